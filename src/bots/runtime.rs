//! The sandbox: one wasmtime engine for every plugin, and calls into a plugin in a fresh store
//! with a CPU budget, a wall-clock limit and a memory cap.
//!
//! CPU time is counted with epoch interruption: one ticker thread advances the engine's epoch
//! every [`TICK`] while any call runs; while guest code runs, each tick it sees costs one tick of its budget and
//! yields to tokio, so a looping plugin shares its worker thread fairly and is stopped once its
//! budget is spent. Time spent in host calls (an HTTP request) is not CPU time: returning from
//! one costs a single tick however long it took. The wall-clock limit covers everything.

use std::path::Path;
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
}

/// The engine, the linker with hearth's imports, and the epoch ticker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: CallLimits,
    ticker: Arc<Ticker>,
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

    async fn call<'a, R>(
        &self,
        plugin: &Compiled,
        grants: Arc<Grants>,
        export: impl for<'s> FnOnce(
            &'s Bot,
            &'s mut Store<HostState>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = wasmtime::Result<R>> + Send + 's>,
        >,
    ) -> (Result<R, CallError>, CallStats) {
        let limits = self.limits;
        let _ticking = self.ticker.enter();
        let mut store = self.new_store(grants);
        let run = async {
            let bot = plugin
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
            export(&bot, &mut store)
                .await
                .map_err(|e| classify(e, &limits))
        };
        let outcome = match tokio::time::timeout(Duration::from_millis(limits.wall_ms), run).await {
            Ok(outcome) => outcome,
            Err(_) => Err(CallError::WallTime(limits.wall_ms)),
        };
        let meter = &store.data().meter;
        let outcome = match outcome {
            // The meter knows better than the error's text why the guest trapped.
            Err(_) if meter.over_cap => Err(CallError::Memory(limits.memory_bytes as u64 >> 20)),
            other => other,
        };
        let stats = CallStats {
            memory_peak: meter.memory_peak,
        };
        (outcome, stats)
    }

    fn new_store(&self, grants: Arc<Grants>) -> Store<HostState> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let state = HostState {
            grants,
            wasi: wasi.build(),
            table: ResourceTable::new(),
            meter: Meter {
                memory_cap: self.limits.memory_bytes,
                memory_peak: 0,
                over_cap: false,
            },
            cpu_ticks: 0,
            log_lines: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.meter);
        let budget = self.limits.cpu_ticks();
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
