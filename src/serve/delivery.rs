//! What a client has taken of what the service wrote to its connection: the bytes written
//! to the socket less those still in its send queue (not yet acknowledged by the client's
//! TCP). A long answer (a phonebook feed) asks it to tell a slow reader from a stalled one.
//!
//! The service cannot see progress from the body alone: it pulls the next chunk only when
//! the socket takes more, and the kernel wakes a writer when a good part of its send buffer
//! (megabytes, auto-tuned) is free again, so a phone reading a steady 150 kB/s pulls a chunk
//! in bursts seconds apart and looked idle. The send queue (`TIOCOUTQ`, Linux) shrinks with
//! every byte the client's TCP acknowledges, which it does as the phone reads.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection's delivery, shared by the connection and the answers written to it.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Bytes written to the socket.
    written: AtomicU64,
    /// The socket's descriptor while the connection is open: None once it closes, so it is
    /// never read after the descriptor is closed (and perhaps reused).
    socket: Mutex<Option<RawFd>>,
}

impl Delivery {
    /// Bytes the client has taken: written, less those still queued to be sent or
    /// acknowledged. None when the connection is closed or the queue cannot be read.
    pub fn taken(&self) -> Option<u64> {
        let socket = self.socket.lock().expect("no poisoning");
        let fd = (*socket)?;
        let mut queued: libc::c_int = 0;
        // SAFETY: `fd` is open while the lock is held (the stream clears it, under the same
        // lock, before its descriptor closes); TIOCOUTQ writes one int.
        let done = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
        if done != 0 {
            return None;
        }
        let written = self.written.load(Ordering::Acquire);
        Some(written.saturating_sub(u64::try_from(queued).unwrap_or(0)))
    }
}

/// A TCP stream that counts what is written to it into a [`Delivery`].
pub struct MeteredStream {
    inner: TcpStream,
    delivery: Arc<Delivery>,
}

impl MeteredStream {
    pub fn new(inner: TcpStream) -> (MeteredStream, Arc<Delivery>) {
        let delivery = Arc::new(Delivery {
            written: AtomicU64::new(0),
            socket: Mutex::new(Some(inner.as_raw_fd())),
        });
        let stream = MeteredStream {
            inner,
            delivery: Arc::clone(&delivery),
        };
        (stream, delivery)
    }

    fn count(&self, written: &Poll<std::io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = written {
            self.delivery
                .written
                .fetch_add(*n as u64, Ordering::Release);
        }
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        // Before `inner` (dropped after this) closes the descriptor.
        *self.delivery.socket.lock().expect("no poisoning") = None;
    }
}

impl AsyncRead for MeteredStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for MeteredStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.count(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.count(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn what_the_client_reads_is_taken_and_what_it_leaves_is_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(address).await.unwrap() });
        let (accepted, _) = listener.accept().await.unwrap();
        let mut client = client.await.unwrap();
        let (mut stream, delivery) = MeteredStream::new(accepted);
        stream.write_all(&[7u8; 1000]).await.unwrap();
        let mut read = [0u8; 1000];
        client.read_exact(&mut read).await.unwrap();
        // Loopback acknowledges at once: all of it is taken.
        let mut taken = 0;
        for _ in 0..100 {
            taken = delivery.taken().unwrap();
            if taken == 1000 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(taken, 1000);
        drop(stream);
        assert_eq!(delivery.taken(), None, "a closed connection tells nothing");
    }
}
