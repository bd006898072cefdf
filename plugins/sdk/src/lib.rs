//! Write hearth chat bots as WebAssembly components.
//!
//! A bot is a type that implements [`Bot`], registered with one line of [`register_bot!`], in a
//! `cdylib` crate built with `cargo build --release --target wasm32-wasip2`. Hearth loads the
//! `.wasm` file from its plugins folder, asks it for its manifest (its name and the commands it
//! serves) and then calls it once per command typed in a room.
//!
//! ```
//! use hearth_bot_sdk::{Bot, Command, CommandSpec, Response};
//!
//! struct Greeter;
//!
//! impl Bot for Greeter {
//!     const NAME: &'static str = "greeter";
//!     const COMMANDS: &'static [CommandSpec] =
//!         &[CommandSpec::new("hello", "/hello [NAME]", "Says hello")];
//!
//!     fn handle(command: &Command) -> Response {
//!         let name = if command.args.is_empty() { &command.caller } else { &command.args };
//!         Response::reply(format!("Hello, {name}!"))
//!     }
//! }
//!
//! hearth_bot_sdk::register_bot!(Greeter);
//! ```
//!
//! Each call runs in a fresh instance with a CPU deadline and a memory cap, so nothing kept in
//! memory survives from one command to the next: keep what must last in [`kv`]. The bot reaches
//! the outside world only through [`http`] (to the hosts hearth's config allows it), [`kv`],
//! [`log`], [`setting`] and [`now_ms`].
//!
//! Everything here but the calls into hearth also works in native unit tests (`cargo test`):
//! build a [`Command`], call your handler's pure parts, and compare [`Response`]s. A call into
//! hearth (an `http`, `kv` or `log` function, `setting`, `now_ms`) panics outside WebAssembly.

#![warn(missing_docs)]

mod command;
mod export;
pub mod http;
pub mod kv;
pub mod log;
mod manifest;
mod response;

pub use command::Command;
pub use manifest::{check_manifest, CommandSpec};
pub use response::{Action, Response};

/// The bindings generated from `wit/bot.wit`: what [`register_bot!`] exports and the SDK's
/// modules wrap. Bots should not need them.
#[doc(hidden)]
#[allow(missing_docs)]
// The canonical ABI passes the invocation's six fields flattened: ten arguments.
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "bot",
        // The export macro must be usable from the bot's crate, through register_bot!.
        pub_export_macro: true,
        export_macro_name: "export_bot",
    });
}

#[doc(hidden)]
pub use export::{handle as __handle, manifest as __manifest};

/// A chat bot: who it is, what commands it serves, and how it answers them.
///
/// Hearth creates no value of this type: every call is a fresh instance of the component, so the
/// trait has only associated items and a bot keeps what must last in [`kv`].
pub trait Bot {
    /// The bot's name, which is also its username in chat: lowercase letters, digits and `-`,
    /// 3 to 32 characters, starting with a letter. It must not be taken by a user or by another
    /// plugin.
    const NAME: &'static str;

    /// The version shown by `hearth plugin list`. `None` (the default) takes the version of the
    /// crate that calls [`register_bot!`].
    const VERSION: Option<&'static str> = None;

    /// The slash-commands the bot serves. Hearth routes only these to it, and lists them in
    /// `/help`.
    const COMMANDS: &'static [CommandSpec];

    /// Answers one command. A panic here fails the call (hearth retries it, then tells the room
    /// the bot failed), so report problems the user can fix as a reply instead.
    fn handle(command: &Command) -> Response;
}

/// Exports a [`Bot`] as the component's implementation of hearth's `bot` world.
///
/// Use it once, at the top level of the bot's crate, as `hearth_bot_sdk::register_bot!(MyBot);`
/// (the crate's documentation has a whole bot). It exports the component's `manifest` and
/// `handle` functions, so a crate can register only one bot.
#[macro_export]
macro_rules! register_bot {
    ($bot:ty) => {
        const _: () = {
            struct HearthBotExport;

            impl $crate::bindings::Guest for HearthBotExport {
                fn manifest() -> $crate::bindings::Manifest {
                    $crate::__manifest::<$bot>(::core::env!("CARGO_PKG_VERSION"))
                }

                fn handle(
                    call: $crate::bindings::Invocation,
                ) -> ::std::vec::Vec<$crate::bindings::Action> {
                    $crate::__handle::<$bot>(call)
                }
            }

    $crate::bindings::export_bot!(HearthBotExport with_types_in $crate::bindings);
        };
    };
}

/// A setting from `[plugin.NAME.settings]` in hearth's config, or `None` when it is not set.
pub fn setting(key: &str) -> Option<String> {
    bindings::hearth::bot::host::setting(key)
}

/// The wall clock, in unix milliseconds.
pub fn now_ms() -> u64 {
    bindings::hearth::bot::host::now_ms()
}
