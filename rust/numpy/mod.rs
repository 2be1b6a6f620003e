//! What tickpub knows about numpy: its types, the dtypes it has met, and the scalar
//! types whose values it reads directly.
//!
//! numpy is imported the first time the encoder meets an object that is not a plain
//! Python value, so messages of str, int, float, dict and list never pay for it.

pub mod raw;

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple, PyType};

use crate::msgpack::write;

/// How a scalar type is encoded, found by the scalar's exact type.
#[derive(Debug)]
pub struct ScalarType {
    type_ptr: usize,
    /// The encoding of `{b'nd': False, b'type': dtype.str, b'data': <value>}` up to
    /// the value's bytes: everything but the value is the same for every scalar of
    /// the type.
    pub prefix: Vec<u8>,
    pub itemsize: usize,
}

/// Facts about one dtype, computed once and cached by dtype identity.
#[derive(Debug)]
pub struct DtypeInfo {
    /// The msgpack value of the `type` field: `dtype.str`, or `dtype.descr` for
    /// structured and void dtypes.
    pub type_field: Vec<u8>,
    /// How many container levels `type_field` nests (0 for a string).
    pub type_depth: usize,
    /// True for kind `V` (structured and void dtypes), packed with kind `b'V'`.
    pub is_void: bool,
    pub itemsize: usize,
    /// The dtype holds Python object references (kind `O`, or object fields).
    pub has_object: bool,
    /// `str(dtype)`, for error messages: `float64`, or the fields of a structured
    /// dtype.
    pub name: String,
}

const DTYPE_CACHE_SIZE: usize = 64;

/// numpy's types and the caches built on them.
pub struct Numpy {
    pub ndarray: Py<PyType>,
    pub number: Py<PyType>,
    pub bool_: Py<PyType>,
    pub datetime64: Py<PyType>,
    scalars: Vec<ScalarType>,
    dtypes: Mutex<Vec<(Py<PyAny>, Arc<DtypeInfo>)>>,
}

impl std::fmt::Debug for Numpy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Numpy")
            .field("scalars", &self.scalars.len())
            .finish()
    }
}

static NUMPY: PyOnceLock<Numpy> = PyOnceLock::new();

/// numpy, imported and checked on first use.
pub fn numpy(py: Python<'_>) -> PyResult<&'static Numpy> {
    NUMPY.get_or_try_init(py, || Numpy::load(py))
}

/// numpy only if some code already imported it: an object cannot be a numpy object
/// before numpy is imported, so the encoder asks this before paying for the import.
pub fn numpy_if_imported(py: Python<'_>) -> PyResult<Option<&'static Numpy>> {
    if let Some(np) = NUMPY.get(py) {
        return Ok(Some(np));
    }
    let modules = py.import("sys")?.getattr("modules")?;
    if modules.contains("numpy")? {
        numpy(py).map(Some)
    } else {
        Ok(None)
    }
}

impl Numpy {
    fn load(py: Python<'_>) -> PyResult<Self> {
        let np = py.import("numpy")?;
        let get_type = |name: &str| -> PyResult<Py<PyType>> {
            Ok(np.getattr(name)?.cast_into::<PyType>()?.unbind())
        };
        let numpy = Self {
            ndarray: get_type("ndarray")?,
            number: get_type("number")?,
            bool_: get_type("bool_")?,
            datetime64: get_type("datetime64")?,
            scalars: Vec::new(),
            dtypes: Mutex::new(Vec::new()),
        };
        numpy.check_array_layout(py, &np)?;
        let scalars = numpy.load_scalar_types(py, &np)?;
        Ok(Self { scalars, ..numpy })
    }

    /// Confirms that `raw::array_raw` reads this numpy's arrays correctly, on a
    /// non-contiguous two-dimensional view whose every field is known.
    fn check_array_layout(&self, py: Python<'_>, np: &Bound<'_, PyModule>) -> PyResult<()> {
        let base = np
            .call_method1("arange", (12,))?
            .call_method1("astype", ("<i2",))?;
        let view = base.call_method1("reshape", ((3, 4),))?.get_item((
            pyo3::types::PySlice::full(py),
            pyo3::types::PySlice::new(py, 0, 4, 2),
        ))?;
        let interface = view.getattr("__array_interface__")?;
        let data_address: usize = interface.get_item("data")?.get_item(0)?.extract()?;
        let dtype = view.getattr("dtype")?;
        // SAFETY: `view` is an ndarray; this call is the check that validates the
        // layout assumption, and only compares what it reads.
        let raw = unsafe { raw::array_raw(&view) };
        let ok = raw.data as usize == data_address
            && raw.shape == [3, 2]
            && raw.strides == [8, 4]
            && raw.descr == dtype.as_ptr()
            && !raw.c_contiguous;
        if ok {
            Ok(())
        } else {
            Err(pyo3::exceptions::PyImportError::new_err(
                "tickpub does not recognise this numpy's array layout; \
                 please report the numpy version",
            ))
        }
    }

    /// The builtin numeric scalar types whose value bytes follow the object header.
    /// Types that subclass a Python type (`float64` is a `float`) are left out: the
    /// reference packs them as that Python type.
    fn load_scalar_types(
        &self,
        py: Python<'_>,
        np: &Bound<'_, PyModule>,
    ) -> PyResult<Vec<ScalarType>> {
        let names = [
            "bool_",
            "byte",
            "ubyte",
            "short",
            "ushort",
            "intc",
            "uintc",
            "int_",
            "uint",
            "longlong",
            "ulonglong",
            "half",
            "single",
            "longdouble",
            "csingle",
            "cdouble",
            "clongdouble",
        ];
        let python_types = PyTuple::new(
            py,
            [
                py.get_type::<pyo3::types::PyInt>(),
                py.get_type::<pyo3::types::PyFloat>(),
                py.get_type::<pyo3::types::PyString>(),
                py.get_type::<pyo3::types::PyBytes>(),
            ],
        )?;
        let header = std::mem::size_of::<pyo3::ffi::PyObject>();
        let mut scalars: Vec<ScalarType> = Vec::new();
        for name in names {
            let Ok(class) = np.getattr(name) else {
                continue;
            };
            let class = class.cast_into::<PyType>()?;
            if class.is_subclass(&python_types)?
                || scalars
                    .iter()
                    .any(|s| s.type_ptr == class.as_ptr() as usize)
            {
                continue;
            }
            let sample = class.call1((1,))?;
            let dtype = sample.getattr("dtype")?;
            let itemsize: usize = dtype.getattr("itemsize")?.extract()?;
            let basicsize: usize = class.getattr("__basicsize__")?.extract()?;
            if basicsize < header + itemsize {
                continue;
            }
            let expected: Vec<u8> = sample.call_method0("tobytes")?.extract()?;
            // SAFETY: `basicsize` shows the object is large enough to hold `itemsize`
            // bytes after the header; the comparison below decides whether the type is
            // used at all.
            let found = unsafe { raw::scalar_value(&sample, itemsize) };
            if found != expected.as_slice() {
                continue;
            }
            let mut prefix = Vec::new();
            write::map_header(&mut prefix, 3);
            write::bin(&mut prefix, b"nd");
            write::boolean(&mut prefix, false);
            write::bin(&mut prefix, b"type");
            write::str(&mut prefix, &dtype.getattr("str")?.extract::<String>()?);
            write::bin(&mut prefix, b"data");
            write::bin_header(&mut prefix, itemsize);
            scalars.push(ScalarType {
                type_ptr: class.as_ptr() as usize,
                prefix,
                itemsize,
            });
        }
        Ok(scalars)
    }

    /// The fast-path description of `object`'s exact type, if it is a builtin scalar.
    pub fn scalar_type(&self, object: &Bound<'_, PyAny>) -> Option<&ScalarType> {
        let type_ptr = object.get_type_ptr() as usize;
        self.scalars.iter().find(|s| s.type_ptr == type_ptr)
    }

    /// Facts about `dtype`, from the cache or computed now.
    pub fn dtype_info(
        &self,
        dtype: &Bound<'_, PyAny>,
        pack_descr: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<Vec<u8>>,
    ) -> PyResult<Arc<DtypeInfo>> {
        let key = dtype.as_ptr();
        if let Ok(cache) = self.dtypes.lock() {
            if let Some((_, info)) = cache.iter().find(|(d, _)| d.as_ptr() == key) {
                return Ok(Arc::clone(info));
            }
        }
        let info = Arc::new(describe(dtype, pack_descr)?);
        // A dtype with fields can be renamed in place (`dtype.names = ...`, also
        // through a nested field), which changes its `descr` but not its identity:
        // only dtypes without fields are remembered.
        if dtype.getattr("names")?.is_none() {
            if let Ok(mut cache) = self.dtypes.lock() {
                if cache.len() >= DTYPE_CACHE_SIZE {
                    cache.remove(0);
                }
                cache.push((dtype.clone().unbind(), Arc::clone(&info)));
            }
        }
        Ok(info)
    }
}

fn describe(
    dtype: &Bound<'_, PyAny>,
    pack_descr: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<Vec<u8>>,
) -> PyResult<DtypeInfo> {
    let kind: String = dtype.getattr("kind")?.extract()?;
    let typestr: String = dtype.getattr("str")?.extract()?;
    let name = dtype.str()?.to_string();
    let itemsize: usize = dtype.getattr("itemsize")?.extract()?;
    let has_object: bool = dtype.getattr("hasobject")?.extract()?;
    let is_void = kind == "V";
    let (type_field, type_depth) = if is_void {
        let descr = dtype.getattr("descr")?;
        (pack_descr(&descr)?, nesting(&descr)?)
    } else {
        let mut field = Vec::new();
        write::str(&mut field, &typestr);
        (field, 0)
    };
    Ok(DtypeInfo {
        type_field,
        type_depth,
        is_void,
        itemsize,
        has_object,
        name,
    })
}

/// How many list or tuple levels `value` nests, as the packer counts them.
fn nesting(value: &Bound<'_, PyAny>) -> PyResult<usize> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = value.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        return Ok(0);
    };
    let mut deepest = 0;
    for item in &items {
        deepest = deepest.max(1 + nesting(item)?);
    }
    Ok(deepest)
}
