//! The kernel's own cost of a fan-out's writes, measured as a reference beside the servers: one thread
//! sends the same bytes to each of N loopback TCP connections (`TCP_NODELAY`) a given number of times a
//! second, in four staggered groups like rtmpx's wake groups, while another thread reads every
//! connection (epoll, through tokio) as a load generator does. The sending thread's CPU is what
//! any server making those writes pays at least on this machine: the system call, TCP, and on loopback the
//! receiver's half of the stack, with no RTMP and no other user-space work.

use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

/// Wake groups, as in rtmpx's hub.
const GROUPS: usize = 4;

/// One measurement: `players` connections, each sent `bits_per_s` in `writes_per_s` writes a second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    pub(crate) players: usize,
    pub(crate) bits_per_s: f64,
    pub(crate) writes_per_s: f64,
    pub(crate) seconds: f64,
}

/// What the writes cost the sending thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Floor {
    pub(crate) core_percent: f64,
    pub(crate) cpu_s_per_gbit: f64,
}

/// CPU time of the calling thread (user and system), from its scheduler statistics.
fn thread_cpu_seconds() -> io::Result<f64> {
    let stats = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    stats
        .split_whitespace()
        .next()
        .and_then(|ns| ns.parse::<u64>().ok())
        .map(|ns| ns as f64 / 1e9)
        .ok_or_else(|| io::Error::other("unreadable /proc/thread-self/schedstat"))
}

/// Reads every connection until its sender closes it, all on one thread (epoll, through tokio).
fn read_all(connections: Vec<TcpStream>) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let mut readers = Vec::with_capacity(connections.len());
        for connection in connections {
            connection.set_nonblocking(true)?;
            let mut connection = tokio::net::TcpStream::from_std(connection)?;
            readers.push(tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                while let Ok(1..) = connection.read(&mut buffer).await {}
            }));
        }
        for reader in readers {
            reader.await.map_err(io::Error::other)?;
        }
        Ok(())
    })
}

/// Runs one load; the reader runs on its own thread for the duration.
pub(crate) fn measure(load: Load) -> io::Result<Floor> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let mut senders = Vec::with_capacity(load.players);
    let mut accepted = Vec::with_capacity(load.players);
    for _ in 0..load.players {
        let sender = TcpStream::connect(address)?;
        sender.set_nodelay(true)?;
        senders.push(sender);
        accepted.push(listener.accept()?.0);
    }
    let reader = std::thread::spawn(move || read_all(accepted));
    let bytes_per_write = (load.bits_per_s / 8.0 / load.writes_per_s).round().max(1.0) as usize;
    let payload = vec![0x5au8; bytes_per_write];
    let turn = Duration::from_secs_f64(1.0 / (load.writes_per_s * GROUPS as f64));
    let warm_up = Duration::from_secs(1);
    let started = Instant::now();
    let mut next_turn = started;
    let mut group = 0;
    let mut measured_from = None;
    let mut bytes = 0u64;
    let outcome = loop {
        let elapsed = started.elapsed();
        if elapsed >= warm_up && measured_from.is_none() {
            measured_from = Some((Instant::now(), thread_cpu_seconds()?));
            bytes = 0;
        }
        if let Some((from, _)) = measured_from {
            if from.elapsed().as_secs_f64() >= load.seconds {
                break Ok(());
            }
        }
        let written = senders
            .iter_mut()
            .skip(group)
            .step_by(GROUPS)
            .try_for_each(|sender| sender.write_all(&payload));
        if let Err(error) = written {
            break Err(error);
        }
        bytes += (payload.len() * senders.len().div_ceil(GROUPS)) as u64;
        group = (group + 1) % GROUPS;
        next_turn += turn;
        if let Some(wait) = next_turn.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    };
    let cpu_now = thread_cpu_seconds()?;
    let cpu = measured_from.map(|(from, cpu)| (from.elapsed().as_secs_f64(), cpu_now - cpu));
    drop(senders);
    reader
        .join()
        .map_err(|_| io::Error::other("the reader thread panicked"))??;
    outcome?;
    let (wall, cpu) = cpu.ok_or_else(|| io::Error::other("nothing measured"))?;
    Ok(Floor {
        core_percent: cpu / wall * 100.0,
        cpu_s_per_gbit: cpu / (bytes as f64 * 8.0 / 1e9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_load_is_written_read_and_costs_some_cpu() {
        let floor = measure(Load {
            players: 8,
            bits_per_s: 2e6,
            writes_per_s: 40.0,
            seconds: 0.5,
        })
        .unwrap();
        assert!(floor.cpu_s_per_gbit > 0.0, "{floor:?}");
        assert!(
            floor.core_percent > 0.0 && floor.core_percent < 100.0,
            "{floor:?}"
        );
    }
}
