//! Benchmarks of the bot sandbox without HTTP or the room around it (docs/performance.md, "Bots"):
//!
//! - `bots/instantiate`: a fresh store with a call's limits, the test bot instantiated into it
//!   from its cached `InstancePre`, then dropped ([`Runtime::instantiate`]).
//! - `bots/echo_call`: one whole `Runtime::handle` of `/echo hi`: fresh store, instantiate,
//!   call, drop. The difference to `instantiate` is the call itself.
//!
//! The plugin is prepared as the server prepares it (`loader::prepare`: compile, manifest, grants),
//! without a database. Each sample runs its iterations inside one `block_on`, so the figures
//! hold no per-iteration scheduler overhead. Before measuring, the bench prints the peak linear
//! memory of each kind of call (`CallStats::memory_peak`): the memory one running plugin holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use hearth::bots::directory::{LoadedPlugin, Source};
use hearth::bots::loader::prepare;
use hearth::bots::runtime::{Action, Invocation, Runtime};
use hearth::config::Config;

const TESTBOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/dist/testbot.wasm");

fn setup(tokio: &tokio::runtime::Runtime) -> (Arc<Runtime>, LoadedPlugin) {
    let config = Config::default();
    let runtime = Arc::new(Runtime::new(&config.bots, None).expect("engine"));
    let wasm = std::fs::read(TESTBOT).expect("plugins/dist/testbot.wasm");
    let plugin = tokio
        .block_on(prepare(
            &runtime,
            wasm,
            Source::File(TESTBOT.into()),
            None,
            &config,
        ))
        .expect("testbot prepares");
    (runtime, plugin)
}

fn echo_hi() -> Invocation {
    Invocation {
        room: "K7MP2X".into(),
        caller: "alice".into(),
        command: "echo".into(),
        args: "hi".into(),
        seq: 42,
        ts: 1_795_000_000_000,
    }
}

fn bots(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (runtime, plugin) = setup(&tokio);
    let invocation = echo_hi();

    // The answer is right, and what one call of each kind holds.
    let (answer, echo_stats) =
        tokio.block_on(runtime.handle(&plugin.compiled, plugin.grants.clone(), &invocation));
    match answer.expect("echo answers").as_slice() {
        [Action::Reply(text)] if text == "hi" => {}
        other => panic!("/echo hi answered {other:?}"),
    }
    let (started, instantiate_stats) =
        tokio.block_on(runtime.instantiate(&plugin.compiled, plugin.grants.clone()));
    started.expect("testbot instantiates");
    eprintln!(
        "memory_peak (linear memory of one instance): instantiate {} bytes, echo_call {} bytes",
        instantiate_stats.memory_peak, echo_stats.memory_peak
    );

    let mut group = c.benchmark_group("bots");
    group.bench_function("instantiate", |b| {
        b.iter_custom(|iters| {
            tokio.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let (outcome, _) = runtime
                        .instantiate(&plugin.compiled, plugin.grants.clone())
                        .await;
                    outcome.expect("instantiates");
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("echo_call", |b| {
        b.iter_custom(|iters| {
            tokio.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let (outcome, _) = runtime
                        .handle(&plugin.compiled, plugin.grants.clone(), &invocation)
                        .await;
                    std::hint::black_box(outcome.expect("echo answers"));
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bots);
criterion_main!(benches);
