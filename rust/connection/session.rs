//! The state behind a `Connection`'s lock: the open link, if any, and when to open a
//! new one (after a failure, or in a child process after `fork`).

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::ClientConfig;

use super::link::Link;
use super::log::Event;
use crate::errors::{ConnErrorKind, Error};
use crate::net::Config;

/// The longest pause between two reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Session {
    link: Option<Link>,
    /// The process that opened `link`.
    pid: u32,
    closed: bool,
}

impl Session {
    pub fn new(link: Link) -> Self {
        Self {
            link: Some(link),
            pid: std::process::id(),
            closed: false,
        }
    }

    /// The open link, opening one first when there is none.
    ///
    /// A link opened by another process (this one is a forked child) is dropped
    /// without a word to the server, since the parent still uses it. A missing link
    /// is reopened with up to `retry_attempts` attempts and a doubling pause between
    /// them; every step is recorded in `events` for the caller to log.
    pub fn link(
        &mut self,
        config: &Config,
        tls: Option<&Arc<ClientConfig>>,
        events: &mut Vec<Event>,
    ) -> Result<&mut Link, Error> {
        if self.closed {
            return Err(Error::Connection {
                kind: ConnErrorKind::Dropped,
                retry_safe: true,
                message: "the connection was closed; call tickpub.connect() for a new one".into(),
            });
        }
        let pid = std::process::id();
        if pid != self.pid {
            // Dropping closes this process's copy of the descriptor only.
            drop(self.link.take());
            self.pid = pid;
            events.push(Event::Forked { pid });
            let link = Link::open(config, tls)?;
            events.push(Event::Connected);
            return Ok(self.link.insert(link));
        }
        match &mut self.link {
            Some(link) => Ok(link),
            slot @ None => Ok(slot.insert(reopen(config, tls, events)?)),
        }
    }

    /// Forgets the link after a transport failure; the next call opens a new one.
    pub fn lost(&mut self, error: &Error, events: &mut Vec<Event>) {
        if let Some(link) = self.link.take() {
            drop(link);
            events.push(Event::Lost {
                error: error.to_string(),
            });
        }
    }

    /// Closes the link politely, unless another process opened it.
    pub fn close(&mut self) {
        self.closed = true;
        if let Some(link) = self.link.take() {
            if self.pid == std::process::id() {
                link.shutdown();
            }
        }
    }
}

/// Opens a new link after a failure: up to `retry_attempts` attempts, the pause
/// between them starting at `retry_backoff` and doubling.
fn reopen(
    config: &Config,
    tls: Option<&Arc<ClientConfig>>,
    events: &mut Vec<Event>,
) -> Result<Link, Error> {
    let attempts = config.retry_attempts.max(1);
    let mut pause = config.retry_backoff;
    let mut attempt = 1;
    loop {
        match Link::open(config, tls) {
            Ok(link) => {
                events.push(Event::Reconnected { attempts: attempt });
                return Ok(link);
            }
            Err(err) if attempt >= attempts => {
                events.push(Event::GaveUp {
                    attempts,
                    error: err.to_string(),
                });
                return Err(err);
            }
            Err(err) => {
                events.push(Event::RetryFailed {
                    attempt,
                    attempts,
                    error: err.to_string(),
                });
                thread::sleep(pause);
                pause = (pause * 2).min(MAX_BACKOFF);
                attempt += 1;
            }
        }
    }
}
