//! A throwaway `redis-server` on a free loopback port, with nothing saved to disk, killed when
//! dropped; and the few commands the benchmark sends it (inline RESP over a plain socket).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    addr: SocketAddr,
}

impl RedisServer {
    /// Starts `program` (normally `redis-server`) and waits until it answers `PING`.
    pub fn start(program: &str) -> Result<RedisServer, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let child = Command::new(program)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {program}: {e}"))?;
        let mut server = RedisServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if server.command("PING").is_ok_and(|r| r == "+PONG") {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{program} exited at start: {status}"));
            }
            if Instant::now() > until {
                return Err(format!("{program} did not answer PING within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// One inline command; its first reply line (`+OK`, `:42`, ...).
    pub fn command(&self, cmd: &str) -> Result<String, String> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1))
            .map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        s.write_all(format!("{cmd}\r\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(s)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(line.trim_end().to_string())
    }

    pub fn flush(&self) -> Result<(), String> {
        match self.command("FLUSHALL")?.as_str() {
            "+OK" => Ok(()),
            other => Err(format!("FLUSHALL answered {other}")),
        }
    }

    /// Keys in the current database.
    pub fn keys(&self) -> Option<u64> {
        self.command("DBSIZE").ok()?.strip_prefix(':')?.parse().ok()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
