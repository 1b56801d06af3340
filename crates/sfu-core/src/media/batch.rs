//! Batched UDP sends: everything a worker's connections want to send in one
//! loop turn goes out with `sendmmsg(2)`, up to [`BATCH`] datagrams per
//! system call, instead of one `sendto` per packet (which dominated the
//! server's CPU per forwarded packet).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use bytes::BytesMut;
use socket2::SockAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per `sendmmsg` call.
pub const BATCH: usize = 64;

/// Datagrams queued for the next [`SendQueue::flush`].
#[derive(Default)]
pub struct SendQueue {
    datagrams: Vec<(SockAddr, BytesMut)>,
}

impl SendQueue {
    pub fn push(&mut self, to: SocketAddr, datagram: BytesMut) {
        self.datagrams.push((SockAddr::from(to), datagram));
    }

    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Send everything queued. A datagram the kernel refuses for another
    /// reason than a full buffer is dropped (UDP is lossy anyway); a full
    /// buffer waits for the socket to become writable.
    pub async fn flush(&mut self, socket: &UdpSocket) {
        let mut sent = 0;
        while sent < self.datagrams.len() {
            let chunk = &self.datagrams[sent..(sent + BATCH).min(self.datagrams.len())];
            match socket.try_io(Interest::WRITABLE, || send_many(socket, chunk)) {
                Ok(n) => sent += n.max(1),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if socket.writable().await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    // The first datagram of the chunk failed: skip it.
                    tracing::trace!("sendmmsg: {e}");
                    sent += 1;
                }
            }
        }
        self.datagrams.clear();
    }
}

/// One `sendmmsg` call for `chunk` (at most [`BATCH`] datagrams); returns how
/// many were sent.
fn send_many(socket: &UdpSocket, chunk: &[(SockAddr, BytesMut)]) -> io::Result<usize> {
    let mut iovecs: [libc::iovec; BATCH] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    // SAFETY: mmsghdr is a plain C struct for which all-zero is a valid value.
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let n = chunk.len().min(BATCH);
    for (i, (addr, data)) in chunk.iter().take(n).enumerate() {
        iovecs[i] = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        msgs[i].msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
        msgs[i].msg_hdr.msg_namelen = addr.len();
        msgs[i].msg_hdr.msg_iov = &mut iovecs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: every msghdr points at an iovec and an address that outlive
    // the call; the kernel only reads them (and writes msg_len).
    let r = unsafe { libc::sendmmsg(socket.as_raw_fd(), msgs.as_mut_ptr(), n as libc::c_uint, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_arrives_whole_and_in_order() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = receiver.local_addr().unwrap();
        let mut queue = SendQueue::default();
        for i in 0..150u32 {
            queue.push(to, BytesMut::from(&i.to_be_bytes()[..]));
        }
        assert_eq!(queue.len(), 150);
        queue.flush(&sender).await;
        assert!(queue.is_empty());
        let mut buf = [0u8; 16];
        for i in 0..150u32 {
            let (n, _) = receiver.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &i.to_be_bytes());
        }
    }
}
