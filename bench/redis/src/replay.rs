//! The parent's side of one mode: spawn the nodes (child processes of this binary), feed
//! call `k` to node `k % nodes` at the trace's time offset, and gather what each node saw.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::child::{Mode, Target};
use crate::trace::TraceCall;

/// What the nodes of one mode saw, together.
#[derive(Default)]
pub struct ModeResult {
    /// Every lookup's latency, and those of the fresh answers and the cache hits.
    pub latency_ns: Vec<u64>,
    pub fresh_ns: Vec<u64>,
    pub cached_ns: Vec<u64>,
    pub fresh: u64,
    pub cached: u64,
    pub fail_open: BTreeMap<String, u64>,
    pub shared_flights: u64,
    /// The shared tier's counters (`Stats::shared_cache`), summed over the nodes.
    pub shared: BTreeMap<String, u64>,
    /// The longest a call waited in a node for a free lookup thread.
    pub queue_max: Duration,
    /// The furthest the feeder fell behind the trace.
    pub feed_late_max: Duration,
    pub wall: Duration,
}

impl ModeResult {
    pub fn fail_opens(&self) -> u64 {
        self.fail_open.values().sum()
    }

    /// Answers the shared tier gave (read from it, or waited for while another node asked).
    pub fn shared_answers(&self) -> u64 {
        ["hits", "waited"]
            .iter()
            .filter_map(|k| self.shared.get(*k))
            .sum()
    }
}

struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

/// Kills whatever nodes are still running if the replay is abandoned half way.
struct Nodes(Vec<Node>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for n in &mut self.0 {
            if matches!(n.child.try_wait(), Ok(None)) {
                let _ = n.child.kill();
                let _ = n.child.wait();
            }
        }
    }
}

pub struct Replay<'a> {
    pub exe: &'a Path,
    pub target: &'a Target,
    pub pem_file: &'a Path,
    pub redis_url: Option<&'a str>,
    pub nodes: usize,
    pub threads: usize,
}

impl Replay<'_> {
    fn spawn(&self, mode: Mode) -> Result<Node, String> {
        let mut cmd = Command::new(self.exe);
        cmd.arg("child")
            .args(["--mode", mode.as_str()])
            .args(["--base-url", &self.target.base_url])
            .arg("--pem-file")
            .arg(self.pem_file)
            .args(["--budget-ms", &self.target.budget_ms.to_string()])
            .args(["--max-in-flight", &self.target.max_in_flight.to_string()])
            .args(["--threads", &self.threads.to_string()]);
        if let Some(url) = self.redis_url.filter(|_| mode == Mode::Shared) {
            cmd.args(["--redis-url", url]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning a node: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(BufReader::new);
        match (stdin, stdout) {
            (Some(stdin), Some(stdout)) => Ok(Node {
                child,
                stdin: Some(stdin),
                stdout,
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err("a node has no pipes".into())
            }
        }
    }

    /// Replays `trace` through `self.nodes` processes configured for `mode`.
    pub fn run(&self, mode: Mode, trace: &[TraceCall]) -> Result<ModeResult, String> {
        let mut nodes = Nodes(Vec::with_capacity(self.nodes));
        for _ in 0..self.nodes {
            nodes.0.push(self.spawn(mode)?);
        }
        for n in &mut nodes.0 {
            let mut line = String::new();
            n.stdout
                .read_line(&mut line)
                .map_err(|e| format!("reading a node: {e}"))?;
            if line.trim() != "ready" {
                return Err(format!("a {} node did not start", mode.as_str()));
            }
        }

        let mut result = ModeResult::default();
        let start = Instant::now();
        for (k, call) in trace.iter().enumerate() {
            let due = start + Duration::from_secs_f64(call.at);
            let now = Instant::now();
            if now < due {
                std::thread::sleep(due - now);
            }
            let late = Instant::now().saturating_duration_since(due);
            result.feed_late_max = result.feed_late_max.max(late);
            let node = &mut nodes.0[k % self.nodes];
            let stdin = node.stdin.as_mut().ok_or("a node's stdin is closed")?;
            stdin
                .write_all(format!("{}\n", call.caller).as_bytes())
                .map_err(|e| format!("feeding a node: {e}"))?;
        }
        for n in &mut nodes.0 {
            n.stdin = None;
        }

        for n in &mut nodes.0 {
            let mut line = String::new();
            n.stdout
                .read_line(&mut line)
                .map_err(|e| format!("reading a node's report: {e}"))?;
            let status = n.child.wait().map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("a {} node exited with {status}", mode.as_str()));
            }
            let r: serde_json::Value = serde_json::from_str(&line)
                .map_err(|e| format!("a node's report is not JSON: {e}"))?;
            let int = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
            result.fresh += int(&r["fresh"]);
            result.cached += int(&r["cached"]);
            result.shared_flights += int(&r["shared_flights"]);
            result.queue_max = result
                .queue_max
                .max(Duration::from_micros(int(&r["queue_max_us"])));
            for (map, key) in [
                (&mut result.fail_open, "fail_open"),
                (&mut result.shared, "shared"),
            ] {
                for (k, v) in r[key].as_object().into_iter().flatten() {
                    *map.entry(k.clone()).or_default() += int(v);
                }
            }
            let ns = |key: &str| -> Vec<u64> {
                r[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_u64())
                    .collect()
            };
            let (fresh, cached) = (ns("fresh_ns"), ns("cached_ns"));
            result.latency_ns.extend(&fresh);
            result.latency_ns.extend(&cached);
            result.latency_ns.extend(ns("fail_ns"));
            result.fresh_ns.extend(fresh);
            result.cached_ns.extend(cached);
        }
        result.latency_ns.sort_unstable();
        result.fresh_ns.sort_unstable();
        result.cached_ns.sort_unstable();
        result.wall = start.elapsed();
        Ok(result)
    }
}
