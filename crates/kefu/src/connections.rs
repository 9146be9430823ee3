//! Connections that end: none outlives `max_connection_age` plus its grace, and none
//! outlives a shutdown's grace period, whatever its clients do.
//!
//! tonic asks an aged connection to go away (HTTP/2 GOAWAY) and waits for its calls;
//! a long stream would hold it forever. Here the socket itself refuses to read or
//! write once its time is up, so hyper drops the connection and its calls with it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

/// An accepted TCP connection with an end.
pub struct Connection {
    stream: TcpStream,
    /// Resolves when the connection must close: its age limit, or the shutdown's end.
    end: Pin<Box<dyn Future<Output = ()> + Send>>,
    ended: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("stream", &self.stream)
            .field("ended", &self.ended)
            .finish()
    }
}

/// The connections of `listener` (with `TCP_NODELAY`: small unary replies must not
/// wait for a delayed ACK), each closed after `lifetime` if set, and all of them once
/// `close_all` turns true.
pub fn incoming(
    listener: TcpListener,
    lifetime: Option<Duration>,
    close_all: watch::Receiver<bool>,
) -> impl Stream<Item = io::Result<Connection>> {
    TcpIncoming::from(listener).with_nodelay(Some(true)).map(move |accepted| {
        let mut close_all = close_all.clone();
        accepted.map(|stream| {
            let end = Box::pin(async move {
                let aged = async {
                    match lifetime {
                        Some(lifetime) => tokio::time::sleep(lifetime).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = aged => {}
                    _ = close_all.wait_for(|close| *close) => {}
                }
            });
            Connection { stream, end, ended: false }
        })
    })
}

impl Connection {
    /// An error once the connection's time is up (registering for the moment it is).
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.ended && self.end.as_mut().poll(cx).is_ready() {
            self.ended = true;
        }
        if self.ended {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed by the server (its age limit or a shutdown)",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(error) = this.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(error) = this.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(error) = this.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(error) = this.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}
