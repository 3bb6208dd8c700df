//! The connection's input buffer: bytes read from the socket and not yet consumed.
//!
//! The storage is zero-filled once when allocated and then reused: reads go straight into the
//! spare tail, consumed requests advance `start`, and the live bytes are moved to the front
//! only when the tail runs out. It grows (up to a limit the caller gives) only when one request
//! needs more room, and goes back to the pool (`buffers`) when the connection goes idle.

use std::io::{self, Read};

/// What a read attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum Filled {
    /// This many bytes arrived; `short` when they did not fill the space offered, which means
    /// the socket had nothing more at that moment.
    Bytes { n: usize, short: bool },
    /// The peer closed its sending side.
    Eof,
    /// Nothing to read right now.
    WouldBlock,
    /// No room: the buffer holds `limit` bytes already.
    Full,
}

#[derive(Debug)]
pub struct ReadBuf {
    storage: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// A buffer with no storage: what an idle connection holds.
    pub fn empty() -> ReadBuf {
        ReadBuf::with_capacity(0)
    }

    pub fn with_capacity(capacity: usize) -> ReadBuf {
        ReadBuf {
            storage: vec![0; capacity],
            start: 0,
            end: 0,
        }
    }

    /// The unconsumed bytes.
    pub fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn capacity(&self) -> usize {
        self.storage.len()
    }

    /// Drops the first `n` unconsumed bytes.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Reads once from `source`, making room first: by moving the live bytes to the front, or
    /// by growing while the unconsumed bytes are fewer than `limit`.
    pub fn fill_from(&mut self, source: &mut impl Read, limit: usize) -> io::Result<Filled> {
        if self.end == self.storage.len() {
            if self.start > 0 {
                self.storage.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.storage.len() < limit {
                let grown = (self.storage.len() * 2).max(1024).min(limit);
                self.storage.resize(grown, 0);
            } else {
                return Ok(Filled::Full);
            }
        }
        loop {
            return match source.read(&mut self.storage[self.end..]) {
                Ok(0) => Ok(Filled::Eof),
                Ok(n) => {
                    let short = self.end + n < self.storage.len();
                    self.end += n;
                    Ok(Filled::Bytes { n, short })
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(Filled::WouldBlock),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => Err(error),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumes_compacts_and_grows_up_to_the_limit() {
        let mut buf = ReadBuf::with_capacity(4);
        let mut source: &[u8] = b"abcdefghij";
        assert_eq!(
            buf.fill_from(&mut source, 8).unwrap(),
            Filled::Bytes { n: 4, short: false }
        );
        assert_eq!(buf.data(), b"abcd");
        buf.consume(2);
        // Full tail, start > 0: compacts instead of growing.
        assert_eq!(
            buf.fill_from(&mut source, 8).unwrap(),
            Filled::Bytes { n: 2, short: false }
        );
        assert_eq!(buf.data(), b"cdef");
        assert_eq!(buf.capacity(), 4);
        // Full from the front: grows to the limit.
        assert_eq!(
            buf.fill_from(&mut source, 8).unwrap(),
            Filled::Bytes { n: 4, short: false }
        );
        assert_eq!(buf.data(), b"cdefghij");
        assert_eq!(buf.fill_from(&mut source, 8).unwrap(), Filled::Full);
        buf.consume(8);
        assert!(buf.is_empty());
        let mut two: &[u8] = b"xy";
        assert_eq!(
            buf.fill_from(&mut two, 8).unwrap(),
            Filled::Bytes { n: 2, short: true }
        );
        buf.consume(2);
        assert_eq!(buf.fill_from(&mut source, 8).unwrap(), Filled::Eof);
    }
}
