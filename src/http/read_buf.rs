//! The connection's input buffer: bytes received and not yet consumed.
//!
//! The storage is zero-filled once when allocated and then reused: reads go straight into the
//! spare tail, consumed requests advance `start`, and the live bytes are moved to the front
//! only when the tail runs out. It grows (up to a limit the caller gives) only when one request
//! needs more room, and goes back to the pool (`buffers`) when the connection goes idle.

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

    /// Forgets the last `n` unconsumed bytes (their contents moved down, see
    /// `ChunkedDecoder::compact`).
    pub fn truncate_end(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.end -= n.min(self.len());
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Room for the next read, made first by moving the live bytes to the front, or by growing
    /// while the unconsumed bytes are fewer than `limit`. `None`: the buffer holds `limit` bytes
    /// already. Report what was written into it with [`ReadBuf::filled`].
    pub fn spare(&mut self, limit: usize) -> Option<&mut [u8]> {
        if self.end == self.storage.len() {
            if self.start > 0 {
                self.storage.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.storage.len() < limit {
                let grown = (self.storage.len() * 2).max(1024).min(limit);
                self.storage.resize(grown, 0);
            } else {
                return None;
            }
        }
        Some(&mut self.storage[self.end..])
    }

    /// Makes the first `n` bytes of the space [`ReadBuf::spare`] offered part of the data.
    pub fn filled(&mut self, n: usize) {
        debug_assert!(self.end + n <= self.storage.len());
        self.end = (self.end + n).min(self.storage.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Copies as much of `source` as the buffer takes; returns the count.
    fn fill(buf: &mut ReadBuf, source: &mut &[u8], limit: usize) -> Option<usize> {
        let space = buf.spare(limit)?;
        let n = space.len().min(source.len());
        space[..n].copy_from_slice(&source[..n]);
        *source = &source[n..];
        buf.filled(n);
        Some(n)
    }

    #[test]
    fn consumes_compacts_and_grows_up_to_the_limit() {
        let mut buf = ReadBuf::with_capacity(4);
        let mut source: &[u8] = b"abcdefghij";
        assert_eq!(fill(&mut buf, &mut source, 8), Some(4));
        assert_eq!(buf.data(), b"abcd");
        buf.consume(2);
        // Full tail, start > 0: compacts instead of growing.
        assert_eq!(fill(&mut buf, &mut source, 8), Some(2));
        assert_eq!(buf.data(), b"cdef");
        assert_eq!(buf.capacity(), 4);
        // Full from the front: grows to the limit.
        assert_eq!(fill(&mut buf, &mut source, 8), Some(4));
        assert_eq!(buf.data(), b"cdefghij");
        assert_eq!(fill(&mut buf, &mut source, 8), None);
        buf.consume(8);
        assert!(buf.is_empty());
        let mut two: &[u8] = b"xy";
        assert_eq!(fill(&mut buf, &mut two, 8), Some(2));
        assert_eq!(buf.data(), b"xy");
    }
}
