//! Waiting for a reply by polling the socket instead of sleeping in the kernel.
//!
//! A thread that blocks in `read` is put to sleep and woken when the reply lands;
//! on virtual machines that wake-up alone can cost more than a loopback round trip.
//! [`spin_until_readable`] asks the kernel, without blocking, whether bytes are
//! waiting, yielding the CPU between questions so that a server on the same core
//! still runs, until they are or the budget is spent.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Whether `fd` has bytes to read (or an error or hang-up to report) right now.
fn readable_now(fd: RawFd) -> io::Result<bool> {
    let mut entry = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `entry` is one valid, initialised pollfd that outlives the call, and the
    // count passed is 1; a timeout of 0 makes the call return at once.
    let ready = unsafe { libc::poll(&mut entry, 1, 0) };
    if ready < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ready > 0)
}

/// Polls `socket` until it is readable or `budget` has passed.
///
/// Returns true when it became readable. Errors end the wait early: the read that
/// follows reports them.
pub fn spin_until_readable(socket: &impl AsRawFd, budget: Duration) -> bool {
    if budget.is_zero() {
        return false;
    }
    let fd = socket.as_raw_fd();
    let start = Instant::now();
    loop {
        match readable_now(fd) {
            Ok(true) | Err(_) => return true,
            Ok(false) if start.elapsed() >= budget => return false,
            Ok(false) => std::thread::yield_now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn an_idle_socket_spends_the_budget() {
        let (a, _b) = UnixStream::pair().unwrap();
        let start = Instant::now();
        assert!(!spin_until_readable(&a, Duration::from_micros(200)));
        assert!(start.elapsed() >= Duration::from_micros(200));
    }

    #[test]
    fn waiting_bytes_end_the_wait() {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"+OK\r\n").unwrap();
        assert!(spin_until_readable(&a, Duration::from_secs(10)));
    }

    #[test]
    fn a_closed_peer_ends_the_wait() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        assert!(spin_until_readable(&a, Duration::from_secs(10)));
    }

    #[test]
    fn a_zero_budget_does_not_poll() {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"+OK\r\n").unwrap();
        assert!(!spin_until_readable(&a, Duration::ZERO));
    }
}
