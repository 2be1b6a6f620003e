//! Where a value sits in a message, for error messages: `data['frames'][3]`.
//!
//! Paths are built only when encoding fails: each container level the error passes
//! on its way out adds its own step.

use pyo3::prelude::*;

/// The name of the message's root in paths.
pub const ROOT: &str = "data";

/// Paths longer than this many steps show their first and last steps only in error
/// messages (the `path` attribute keeps them all).
pub const SHOWN_STEPS: usize = 12;

/// One step from a container to one of its values.
#[derive(Debug)]
pub enum Step {
    /// A dict value, by the `repr` of its key.
    Key(String),
    /// A list or tuple element.
    Index(usize),
}

impl Step {
    /// The step to a dict value whose key is `key`.
    pub fn key(key: &Bound<'_, PyAny>) -> Self {
        let text = key
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| String::from("<key>"));
        Self::Key(shorten(text, 60))
    }

    fn render(&self, out: &mut String) {
        match self {
            Self::Key(key) => {
                out.push('[');
                out.push_str(key);
                out.push(']');
            }
            Self::Index(index) => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
        }
    }
}

fn shorten(mut text: String, limit: usize) -> String {
    if text.chars().count() > limit {
        text = text.chars().take(limit).collect();
        text.push('…');
    }
    text
}

/// Renders steps collected innermost first (the order in which an error passes the
/// containers on its way out); paths of more than `shown` steps keep only their first
/// and last steps.
pub fn render(innermost_first: &[Step], shown: usize) -> String {
    let mut out = String::from(ROOT);
    let steps: Vec<&Step> = innermost_first.iter().rev().collect();
    if steps.len() <= shown {
        for step in steps {
            step.render(&mut out);
        }
        return out;
    }
    let half = shown / 2;
    for step in &steps[..half] {
        step.render(&mut out);
    }
    out.push_str(&format!("…({} more)…", steps.len() - 2 * half));
    for step in &steps[steps.len() - half..] {
        step.render(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_outermost_first() {
        let steps = [Step::Index(3), Step::Key("'frames'".into())];
        assert_eq!(render(&steps, SHOWN_STEPS), "data['frames'][3]");
    }

    #[test]
    fn long_paths_are_elided_in_the_middle() {
        let steps: Vec<Step> = (0..100).map(Step::Index).collect();
        let text = render(&steps, SHOWN_STEPS);
        assert!(text.starts_with("data[99][98]"));
        assert!(text.contains("…(88 more)…"));
        assert!(text.ends_with("[1][0]"));
        let full = render(&steps, usize::MAX);
        assert_eq!(full.matches('[').count(), 100);
    }
}
