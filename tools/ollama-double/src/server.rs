//! The listener and its connections, run by hand (not `axum::serve`) so that stopping closes
//! open connections too, not only the listener: a client mid-stream sees the stream cut, and
//! new connections are refused until a restart.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// A running accept loop: how to stop it and how to wait for it.
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Serves one router on one port, and can stop and start again on that port.
pub struct Server {
    addr: SocketAddr,
    app: Router,
    running: Mutex<Option<Running>>,
}

impl Server {
    /// Binds 127.0.0.1:`port` (0: any free port) and starts serving.
    pub async fn bind(port: u16, app: Router) -> io::Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let server = Server { addr, app, running: Mutex::new(None) };
        *server.running.lock().await = Some(spawn(listener, server.app.clone()));
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops accepting, closes every connection and waits until they are gone.
    pub async fn stop(&self) {
        if let Some(running) = self.running.lock().await.take() {
            let _ = running.stop.send(());
            let _ = running.task.await;
        }
    }

    /// Listens on the same port again. Retries briefly while the OS still holds the port.
    pub async fn restart(&self) -> io::Result<()> {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return Ok(());
        }
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        };
        *running = Some(spawn(listener, self.app.clone()));
        Ok(())
    }
}

fn spawn(listener: TcpListener, app: Router) -> Running {
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, app, stopped));
    Running { stop, task }
}

async fn accept_loop(listener: TcpListener, app: Router, mut stopped: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let service = TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = connection.await {
                        tracing::debug!("Ollama double connection ended: {e}");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Aborts every connection task, which drops (closes) its socket, and waits for them.
    connections.shutdown().await;
}
