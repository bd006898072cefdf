//! `hearth-load`: opens many authenticated sockets to a hearth server on this machine, spreads
//! them over rooms, sends at a fixed rate, and reports deliveries, latency percentiles and the
//! server's memory and CPU. Every loop is bounded in count and time, and it only ever connects
//! to loopback addresses.

mod args;
mod commands;
mod proc_stats;
mod setup;
mod sockets;

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use args::Args;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.check_loopback()?;
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    if let Ok(limit) = rlimit::increase_nofile_limit(u64::MAX) {
        if limit < args.sockets as u64 + 256 {
            eprintln!(
                "warning: open-files limit is {limit}, below the {} sockets asked for",
                args.sockets
            );
        }
    }

    setup::wait_until_up(&args, Duration::from_secs(30))
        .await
        .context("waiting for the server")?;
    let setup_started = Instant::now();
    let accounts = setup::accounts(&args).await.context("creating users")?;
    let rooms = setup::rooms(&args, &accounts)
        .await
        .context("creating rooms")?;
    let server = proc_stats::Sampler::new(args.pid);
    let rss_before = server.rss_kib();
    let mut fleet = sockets::open(&args, &accounts, &rooms, deadline).await?;
    let setup_secs = setup_started.elapsed().as_secs_f64();
    let rss_connected = server.rss_kib();
    eprintln!(
        "connected {} sockets in {} rooms in {setup_secs:.1} s",
        fleet.connected(),
        rooms.len()
    );
    if fleet.connected() == 0 {
        bail!("no socket could connect");
    }

    if let Some(command) = args.command() {
        let waited = fleet.wait_for_command(&args).await?;
        eprintln!("/help lists {command:?} (waited {waited:.1} s)");
    }

    let (connected, failed) = (fleet.connected(), fleet.failed());
    let health_ms = setup::health_latency_ms(&args).await?;
    let cpu_before = server.cpu_seconds();
    let run_started = Instant::now();
    let peak = server.watch_peak_rss();
    let outcome = fleet.run(&args, deadline).await;
    let run_secs = run_started.elapsed().as_secs_f64();
    let rss_peak = peak.stop().await;
    let cpu = server
        .cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let rss_after = server.rss_kib();

    let h = &outcome.latency;
    let ms = |v: u64| v as f64 / 1000.0;
    let send_secs = args.duration as f64;
    let deliveries_per_sec = outcome.deliveries as f64 / send_secs;
    let cpu_us_per_delivery = cpu
        .filter(|_| outcome.deliveries > 0)
        .map(|c| c * 1e6 / outcome.deliveries as f64);
    let per_socket_bytes = match (rss_before, rss_connected) {
        (Some(before), Some(after)) if connected > 0 => {
            Some((after.saturating_sub(before) * 1024) as f64 / connected as f64)
        }
        _ => None,
    };
    println!("connections        {connected}");
    println!("failed connections {failed}");
    println!("setup              {setup_secs:.2} s");
    println!("sends / acks       {} / {}", outcome.sends, outcome.acks);
    println!(
        "deliveries         {} of {} expected",
        outcome.deliveries, outcome.expected
    );
    println!("deliveries/s       {deliveries_per_sec:.0}");
    println!(
        "latency ms         p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max())
    );
    println!("closed by server   {}", outcome.closed_by_server);
    if let Some(health) = health_ms {
        println!("/healthz           {health:.2} ms (median of 5, with every socket open)");
    }
    if let (Some(before), Some(connected), Some(after)) = (rss_before, rss_connected, rss_after) {
        println!("server RSS KiB     {before} before, {connected} connected, {after} after");
    }
    if let Some(peak) = rss_peak {
        println!("server RSS peak    {peak} KiB while sending (sampled every 100 ms)");
    }
    if let Some(bytes) = per_socket_bytes {
        println!("server bytes/sock  {bytes:.0}");
    }
    if let Some(cpu) = cpu {
        println!("server CPU         {cpu:.2} s over {run_secs:.1} s");
    }
    if let Some(us) = cpu_us_per_delivery {
        println!("server CPU/deliv.  {us:.2} µs");
    }
    let command_summary = outcome
        .commands
        .as_ref()
        .zip(args.command())
        .map(|(times, command)| command_report(command, times, send_secs));
    let mut summary = json!({
        "connections": connected,
        "failed_connections": failed,
        "rooms": rooms.len(),
        "setup_s": setup_secs,
        "sends": outcome.sends,
        "acks": outcome.acks,
        "deliveries": outcome.deliveries,
        "expected_deliveries": outcome.expected,
        "deliveries_per_s": deliveries_per_sec,
        "p50_ms": ms(h.value_at_quantile(0.5)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "closed_by_server": outcome.closed_by_server,
        "healthz_ms": health_ms,
        "server_rss_kib_before": rss_before,
        "server_rss_kib_connected": rss_connected,
        "server_rss_kib_after": rss_after,
        "server_bytes_per_socket": per_socket_bytes,
        "server_cpu_s": cpu,
        "server_cpu_us_per_delivery": cpu_us_per_delivery,
        "server_rss_kib_peak": rss_peak,
    });
    if let Some(command) = command_summary {
        summary["command"] = command;
    }
    println!("{summary}");
    Ok(())
}

/// Percentiles of a latency histogram in microseconds, as milliseconds.
fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |v: u64| v as f64 / 1000.0;
    json!({
        "count": h.len(),
        "p50": ms(h.value_at_quantile(0.5)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
    })
}

/// Prints the command timings and answers them for the summary line. The bot's overhead is
/// the reply's latency less the command's own message's (what the same text costs as chat).
fn command_report(command: &str, times: &commands::CommandTimes, send_secs: f64) -> Value {
    let ms = |v: u64| v as f64 / 1000.0;
    println!(
        "commands           {command:?}: {} sent, {} acked, {} own messages, {} answered, {} refused",
        times.sent, times.acked, times.echoed, times.replied, times.refused
    );
    for (what, h) in [
        ("send -> ack", &times.ack),
        ("send -> message", &times.echo),
        ("send -> bot reply", &times.reply),
        ("message -> reply", &times.reply_after_echo),
    ] {
        println!(
            "{what:<18} ms p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max())
        );
    }
    let overhead =
        |q: f64| ms(times.reply.value_at_quantile(q)) - ms(times.echo.value_at_quantile(q));
    println!(
        "bot overhead       ms p50 {:.2}  p99 {:.2}  (reply less own message, per percentile)",
        overhead(0.5),
        overhead(0.99)
    );
    json!({
        "text": command,
        "sent": times.sent,
        "acked": times.acked,
        "own_messages": times.echoed,
        "answered": times.replied,
        "refused": times.refused,
        "answered_per_s": times.replied as f64 / send_secs,
        "ack_ms": percentiles(&times.ack),
        "message_ms": percentiles(&times.echo),
        "reply_ms": percentiles(&times.reply),
        "reply_after_message_ms": percentiles(&times.reply_after_echo),
        "overhead_p50_ms": overhead(0.5),
        "overhead_p99_ms": overhead(0.99),
    })
}
