//! The sandbox: one wasmtime engine for every plugin, and calls into a plugin in a fresh store
//! with a CPU budget, a wall-clock limit and a memory cap.
//!
//! CPU time is counted with epoch interruption: one ticker thread advances the engine's epoch
//! every [`TICK`] while any call runs; while guest code runs, each tick it sees costs one tick of its budget and
//! yields to tokio, so a looping plugin shares its worker thread fairly and is stopped once its
//! budget is spent. Time spent in host calls (an HTTP request) is not CPU time: returning from
//! one costs a single tick however long it took. The wall-clock limit covers everything.
//!
//! Calls run on a small runtime of their own ([`Pool`]: `bots.threads` threads, by default one
//! fewer than the cores), never on the threads that serve chat, and at most `bots.max_calls`
//! at once in the whole server: however the plugins behave, chat keeps the other cores.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Cache, CacheConfig, Config, Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::host::Grants;
use super::BotError;
use crate::config::BotsConfig;

wasmtime::component::bindgen!({
    path: "plugins/wit",
    world: "hearth:bot/bot",
    imports: { "hearth:bot/http.send": async },
    exports: { default: async },
});

/// How often the engine's epoch advances: the granularity of the CPU budget.
pub const TICK: Duration = Duration::from_millis(10);

/// Why a call did not answer. Every one of these is a failed try of a job.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    #[error("crashed: {0}")]
    Trap(String),
    #[error("used up its {0} ms of CPU time")]
    CpuTime(u64),
    #[error("took longer than {0} ms")]
    WallTime(u64),
    #[error("tried to use more than {0} MiB of memory")]
    Memory(u64),
    #[error("could not start: {0}")]
    Instantiate(String),
}

/// The limits of one call, from `[bots]`.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    pub cpu_ms: u64,
    pub wall_ms: u64,
    pub memory_bytes: usize,
}

impl CallLimits {
    pub fn from_config(config: &BotsConfig) -> CallLimits {
        CallLimits {
            cpu_ms: config.call_cpu_ms,
            wall_ms: config.call_timeout_ms,
            memory_bytes: usize::try_from(config.memory_mb * 1024 * 1024).unwrap_or(usize::MAX),
        }
    }

    fn cpu_ticks(&self) -> u64 {
        self.cpu_ms.div_ceil(TICK.as_millis() as u64).max(1)
    }
}

/// What a store holds for one call: the plugin's grants, an empty WASI context (std's imports
/// are satisfied, but there are no files, environment, arguments or sockets), and the meters.
pub struct HostState {
    pub(super) grants: Arc<Grants>,
    wasi: WasiCtx,
    table: ResourceTable,
    meter: Meter,
    cpu_ticks: u64,
    log_lines: u32,
}

impl HostState {
    /// Counts a log line of this call; false once the call has used its allowance.
    pub(super) fn count_log_line(&mut self, allowance: u32) -> bool {
        self.log_lines += 1;
        self.log_lines <= allowance
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and tables, and remembers whether the cap was what stopped a call.
struct Meter {
    memory_cap: usize,
    memory_peak: usize,
    over_cap: bool,
}

/// Tables hold function references; no plugin needs more.
const TABLE_ELEMENTS_MAX: usize = 100_000;

impl ResourceLimiter for Meter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.over_cap = true;
            // An error here traps, rather than letting memory.grow answer -1 to a guest that
            // would likely abort anyway, less clearly.
            return Err(wasmtime::format_err!("memory limit reached"));
        }
        self.memory_peak = self.memory_peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_MAX)
    }

    fn instances(&self) -> usize {
        // A component is a handful of core instances; wasi-libc and std add a few.
        64
    }
}

#[derive(Debug, thiserror::Error)]
#[error("CPU budget used up")]
struct CpuBudgetSpent;

/// A compiled plugin, ready to be instantiated any number of times.
#[derive(Clone)]
pub struct Compiled {
    pre: BotPre<HostState>,
}

/// What a finished call reports besides its answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallStats {
    /// The largest linear memory the instance grew to.
    pub memory_peak: usize,
    /// Whether the call ran on the bot pool's threads (it always does; tests check).
    pub on_pool: bool,
}

/// The engine, the linker with hearth's imports, the epoch ticker and the pool calls run on.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: CallLimits,
    ticker: Arc<Ticker>,
    pool: Pool,
}

impl Runtime {
    /// Sets up the engine. Compiled components are cached in `cache_dir` (keyed by wasmtime's
    /// version, the compiler's settings and the component's hash), so a restart does not compile
    /// again; `None` compiles every time (tests, `hearth plugin check`).
    pub fn new(config: &BotsConfig, cache_dir: Option<&Path>) -> Result<Runtime, BotError> {
        let mut wasm = Config::new();
        wasm.epoch_interruption(true);
        let stack = usize::try_from(config.max_stack_kb * 1024).unwrap_or(usize::MAX);
        wasm.max_wasm_stack(stack);
        // The fiber a call runs on holds the wasm stack plus the host's own frames.
        wasm.async_stack_size(stack + 1024 * 1024);
        if let Some(dir) = cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| BotError::Cache(e.to_string()))?;
            let mut cache = CacheConfig::new();
            cache
                .with_directory(dir)
                .with_files_total_size_soft_limit(config.cache_mb.saturating_mul(1024 * 1024));
            let cache = Cache::new(cache).map_err(|e| BotError::Cache(e.to_string()))?;
            wasm.cache(Some(cache));
        }
        let engine = Engine::new(&wasm).map_err(|e| BotError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| BotError::Engine(e.to_string()))?;
        Bot::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| BotError::Engine(e.to_string()))?;
        let ticker = Ticker::start(engine.clone())?;
        Ok(Runtime {
            engine,
            linker,
            limits: CallLimits::from_config(config),
            ticker,
            pool: Pool::new(config)?,
        })
    }

    pub fn limits(&self) -> CallLimits {
        self.limits
    }

    /// Compiles a component and checks it against the `bot` world. CPU-heavy on a cache miss:
    /// call it on a blocking thread.
    pub fn compile(&self, wasm: &[u8]) -> Result<Compiled, BotError> {
        let component =
            Component::new(&self.engine, wasm).map_err(|e| BotError::Invalid(e.to_string()))?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| BotError::Invalid(format!("{e:#}")))?;
        let pre = BotPre::new(instance_pre).map_err(|e| BotError::Invalid(format!("{e:#}")))?;
        Ok(Compiled { pre })
    }

    /// Asks a plugin for its manifest.
    pub async fn manifest(
        &self,
        plugin: &Compiled,
        grants: Arc<Grants>,
    ) -> Result<Manifest, CallError> {
        let (outcome, _) = self
            .call(plugin, grants, |bot, store| {
                Box::pin(async move { bot.call_manifest(store).await })
            })
            .await;
        outcome
    }

    /// Hands one command to a plugin, in a fresh instance.
    pub async fn handle(
        &self,
        plugin: &Compiled,
        grants: Arc<Grants>,
        invocation: &Invocation,
    ) -> (Result<Vec<Action>, CallError>, CallStats) {
        let invocation = invocation.clone();
        self.call(plugin, grants, move |bot, store| {
            Box::pin(async move { bot.call_handle(store, &invocation).await })
        })
        .await
    }

    /// Instantiates a plugin in a fresh store, with the limits of a call, and drops it without
    /// calling any export: the fixed cost every call pays before the plugin runs. The plugin's
    /// own start-up code (its core modules' start functions) runs; nothing else does.
    /// `benches/bots.rs` measures it.
    pub async fn instantiate(
        &self,
        plugin: &Compiled,
        grants: Arc<Grants>,
    ) -> (Result<(), CallError>, CallStats) {
        self.call(plugin, grants, |_, _| Box::pin(async { Ok(()) }))
            .await
    }

    async fn call<R: Send + 'static>(
        &self,
        plugin: &Compiled,
        grants: Arc<Grants>,
        export: impl for<'s> FnOnce(
                &'s Bot,
                &'s mut Store<HostState>,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = wasmtime::Result<R>> + Send + 's>,
            > + Send
            + 'static,
    ) -> (Result<R, CallError>, CallStats) {
        let limits = self.limits;
        let Ok(_permit) = self.pool.calls.acquire().await else {
            return (Err(abandoned()), CallStats::default());
        };
        let (engine, ticker, pre) = (self.engine.clone(), self.ticker.clone(), plugin.pre.clone());
        let running = self.pool.running.clone();
        let call = async move {
            let _running = Running::start(&running);
            let _ticking = ticker.enter();
            let mut store = new_store(&engine, limits, grants);
            let run = async {
                let bot = pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
                export(&bot, &mut store)
                    .await
                    .map_err(|e| classify(e, &limits))
            };
            let outcome =
                match tokio::time::timeout(Duration::from_millis(limits.wall_ms), run).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(CallError::WallTime(limits.wall_ms)),
                };
            let meter = &store.data().meter;
            let outcome = match outcome {
                // The meter knows better than the error's text why the guest trapped.
                Err(_) if meter.over_cap => {
                    Err(CallError::Memory(limits.memory_bytes as u64 >> 20))
                }
                other => other,
            };
            let stats = CallStats {
                memory_peak: meter.memory_peak,
                on_pool: std::thread::current().name() == Some(POOL_THREAD),
            };
            (outcome, stats)
        };
        // Aborted if the caller stops waiting (shutdown), as a call on this runtime would be.
        let mut task = AbortOnDrop(self.pool.handle.spawn(call));
        match (&mut task.0).await {
            Ok(done) => done,
            Err(_) => (Err(abandoned()), CallStats::default()),
        }
    }
}

/// A call that ended without finishing: the pool stopped under it.
fn abandoned() -> CallError {
    CallError::Trap("the call was abandoned: the bot pool stopped".into())
}

/// A spawned call that is aborted when its caller drops it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn new_store(engine: &Engine, limits: CallLimits, grants: Arc<Grants>) -> Store<HostState> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let state = HostState {
        grants,
        wasi: wasi.build(),
        table: ResourceTable::new(),
        meter: Meter {
            memory_cap: limits.memory_bytes,
            memory_peak: 0,
            over_cap: false,
        },
        cpu_ticks: 0,
        log_lines: 0,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.meter);
    let budget = limits.cpu_ticks();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut ctx| {
        let state = ctx.data_mut();
        state.cpu_ticks += 1;
        if state.cpu_ticks > budget {
            return Err(CpuBudgetSpent.into());
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

/// The name of the bot pool's threads.
const POOL_THREAD: &str = "hearth-bots";

/// The threads plugin calls run on, apart from chat's, and the server-wide cap on calls.
struct Pool {
    handle: tokio::runtime::Handle,
    /// Calls running now, and the most that ever ran at once.
    running: Arc<CallsRunning>,
    /// Kept to be shut down without waiting when the runtime ends (it may be dropped inside
    /// another runtime, where waiting is not allowed).
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    calls: tokio::sync::Semaphore,
}

impl Pool {
    fn new(config: &BotsConfig) -> Result<Pool, BotError> {
        let threads = match config.threads {
            0 => pool_threads(std::thread::available_parallelism().map_or(1, |n| n.get())),
            n => n,
        };
        let calls = match config.max_calls {
            0 => tokio::sync::Semaphore::MAX_PERMITS,
            n => n,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(POOL_THREAD)
            .enable_all()
            .build()
            .map_err(|e| BotError::Engine(format!("cannot start the bot pool: {e}")))?;
        Ok(Pool {
            handle: runtime.handle().clone(),
            running: Arc::default(),
            runtime: Mutex::new(Some(runtime)),
            calls: tokio::sync::Semaphore::new(calls),
        })
    }
}

#[derive(Default)]
struct CallsRunning {
    now: AtomicUsize,
    most: AtomicUsize,
}

/// One call counted as running (`hearth_bot_calls_running`) for as long as it lives.
struct Running<'a>(&'a CallsRunning);

impl Running<'_> {
    fn start(calls: &CallsRunning) -> Running<'_> {
        let now = calls.now.fetch_add(1, Ordering::SeqCst) + 1;
        calls.most.fetch_max(now, Ordering::SeqCst);
        metrics::gauge!("hearth_bot_calls_running").increment(1.0);
        Running(calls)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!("hearth_bot_calls_running").decrement(1.0);
    }
}

/// The default size of the pool: one fewer than the cores, at least one.
fn pool_threads(cores: usize) -> usize {
    cores.saturating_sub(1).max(1)
}

impl Drop for Pool {
    fn drop(&mut self) {
        let runtime = self
            .runtime
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(runtime) = runtime {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

/// The thread that advances the engine's epoch every [`TICK`], only while calls run: an idle
/// server (a Raspberry Pi on a shelf) is not woken a hundred times a second for nothing.
struct Ticker {
    /// Calls running, and whether the thread should end.
    state: Mutex<(usize, bool)>,
    wake: Condvar,
}

/// Counts a call as running for as long as it lives.
struct Ticking<'a>(&'a Ticker);

impl Ticker {
    fn start(engine: Engine) -> Result<Arc<Ticker>, BotError> {
        let ticker = Arc::new(Ticker {
            state: Mutex::new((0, false)),
            wake: Condvar::new(),
        });
        let shared = ticker.clone();
        std::thread::Builder::new()
            .name("hearth-bot-epoch".into())
            .spawn(move || shared.run(&engine))
            .map_err(|e| BotError::Engine(format!("cannot start the epoch ticker: {e}")))?;
        Ok(ticker)
    }

    fn run(&self, engine: &Engine) {
        loop {
            {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                while state.0 == 0 && !state.1 {
                    state = self
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                if state.1 {
                    return;
                }
            }
            std::thread::sleep(TICK);
            engine.increment_epoch();
        }
    }

    fn enter(&self) -> Ticking<'_> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 += 1;
        self.wake.notify_one();
        Ticking(self)
    }

    fn stop(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.1 = true;
        self.wake.notify_one();
    }
}

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 -= 1;
    }
}

/// Names what stopped a call.
fn classify(error: wasmtime::Error, limits: &CallLimits) -> CallError {
    if error.downcast_ref::<CpuBudgetSpent>().is_some() {
        return CallError::CpuTime(limits.cpu_ms);
    }
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        return CallError::Trap(trap.to_string());
    }
    // A guest panic is an `unreachable` trap; its message is on the error's root.
    CallError::Trap(
        format!("{:#}", error)
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(max_calls: usize) -> Runtime {
        let config = BotsConfig {
            threads: 1,
            max_calls,
            ..BotsConfig::default()
        };
        Runtime::new(&config, None).unwrap()
    }

    fn notes(runtime: &Runtime) -> Compiled {
        let (_, wasm) = super::super::BUNDLED
            .iter()
            .find(|(name, _)| *name == "notes.wasm")
            .unwrap();
        runtime.compile(wasm).unwrap()
    }

    fn grants() -> Arc<Grants> {
        let config = BotsConfig::default();
        let plugin = crate::config::PluginConfig::default();
        Arc::new(Grants {
            plugin: "notes".into(),
            store: None,
            kv_quota: 0,
            settings: Default::default(),
            http: super::super::http::PluginHttp::new(&plugin, &config).unwrap(),
        })
    }

    /// Plugin calls never run on the threads that serve chat (the caller's runtime here), and
    /// no more than `bots.max_calls` run at once in all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_run_on_the_pool_and_at_most_max_calls_at_once() {
        let runtime = Arc::new(runtime(1));
        let plugin = notes(&runtime);
        let (outcome, stats) = runtime.instantiate(&plugin, grants()).await;
        outcome.unwrap();
        assert!(stats.on_pool, "the call ran on the caller's thread");
        let calls = (0..4).map(|_| {
            let (runtime, plugin) = (runtime.clone(), plugin.clone());
            tokio::spawn(async move { runtime.instantiate(&plugin, grants()).await })
        });
        for call in futures_util::future::join_all(calls).await {
            call.unwrap().0.unwrap();
        }
        assert_eq!(runtime.pool.running.most.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_pool_leaves_chat_a_core() {
        assert_eq!(pool_threads(1), 1);
        assert_eq!(pool_threads(2), 1);
        assert_eq!(pool_threads(8), 7);
    }
}
