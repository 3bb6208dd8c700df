//! The loop's pool of connection buffers.
//!
//! An idle keep-alive connection needs no buffers at all, so it gives them back here and takes
//! them again when its next request arrives: idle connections cost their `Conn` and the kernel's
//! socket, not kilobytes of buffer each, and the hot path reuses warm buffers instead of calling
//! the allocator. Only baseline-sized buffers are kept; one that grew for a large request is
//! freed, so the pool never hoards memory.

use crate::http::parse::HeaderSpan;
use crate::http::read_buf::ReadBuf;

/// Read buffer a connection starts with.
pub const READ_BUF_BASELINE: usize = 4 * 1024;
/// Largest write buffer worth keeping for reuse.
pub const WRITE_BUF_BASELINE: usize = 16 * 1024;
/// Largest header list worth keeping for reuse (fields).
pub const HEADERS_BASELINE: usize = 32;
/// Most buffers of each kind kept in the pool.
const MAX_POOLED: usize = 1024;

#[derive(Debug, Default)]
pub struct BufferPool {
    read: Vec<ReadBuf>,
    write: Vec<Vec<u8>>,
    /// The parsed header fields' offsets, which an idle connection does not need either.
    headers: Vec<Vec<HeaderSpan>>,
    /// One buffer the loop lends for a moment: file bytes on their way into TLS records.
    scratch: Vec<u8>,
}

impl BufferPool {
    /// An empty read buffer of baseline size.
    pub fn take_read(&mut self) -> ReadBuf {
        self.read
            .pop()
            .unwrap_or_else(|| ReadBuf::with_capacity(READ_BUF_BASELINE))
    }

    /// An empty write buffer.
    pub fn take_write(&mut self) -> Vec<u8> {
        self.write
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(WRITE_BUF_BASELINE))
    }

    /// An empty list for a request's header fields.
    pub fn take_headers(&mut self) -> Vec<HeaderSpan> {
        self.headers.pop().unwrap_or_default()
    }

    /// Keeps `headers` for reuse unless it grew past the baseline; its contents are discarded.
    pub fn give_headers(&mut self, mut headers: Vec<HeaderSpan>) {
        if headers.capacity() > 0
            && headers.capacity() <= HEADERS_BASELINE
            && self.headers.len() < MAX_POOLED
        {
            headers.clear();
            self.headers.push(headers);
        }
    }

    /// The loop's scratch buffer, at least `len` bytes long. Its contents are garbage; it is
    /// borrowed only for the length of one call.
    pub fn scratch(&mut self, len: usize) -> &mut [u8] {
        if self.scratch.len() < len {
            self.scratch.resize(len, 0);
        }
        &mut self.scratch[..len]
    }

    /// Keeps `buf` for reuse if it is baseline-sized; its contents are discarded.
    pub fn give_read(&mut self, mut buf: ReadBuf) {
        if buf.capacity() == READ_BUF_BASELINE && self.read.len() < MAX_POOLED {
            buf.clear();
            self.read.push(buf);
        }
    }

    /// Keeps `buf` for reuse unless it grew past the baseline; its contents are discarded.
    pub fn give_write(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() > 0
            && buf.capacity() <= WRITE_BUF_BASELINE
            && self.write.len() < MAX_POOLED
        {
            buf.clear();
            self.write.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_baseline_buffers_and_frees_grown_ones() {
        let mut pool = BufferPool::default();
        let mut write = pool.take_write();
        write.extend_from_slice(b"left over");
        pool.give_write(write);
        let reused = pool.take_write();
        assert!(reused.is_empty());
        assert_eq!(reused.capacity(), WRITE_BUF_BASELINE);

        pool.give_write(Vec::with_capacity(WRITE_BUF_BASELINE * 4));
        pool.give_read(ReadBuf::with_capacity(READ_BUF_BASELINE * 2));
        assert!(pool.write.is_empty() && pool.read.is_empty());

        let read = pool.take_read();
        pool.give_read(read);
        assert_eq!(pool.read.len(), 1);
    }
}
