//! The glue between the generated `Guest` trait and [`Bot`]: what [`crate::register_bot!`] calls.

use crate::bindings::hearth::bot::types;
use crate::{log, Bot, Command};

/// The manifest of `B`; `crate_version` is the version of the crate that registered it, used
/// when the bot names none.
pub fn manifest<B: Bot>(crate_version: &str) -> types::Manifest {
    types::Manifest {
        name: B::NAME.to_owned(),
        version: B::VERSION.unwrap_or(crate_version).to_owned(),
        commands: B::COMMANDS
            .iter()
            .map(|spec| types::CommandSpec {
                name: spec.name.to_owned(),
                usage: spec.usage.to_owned(),
                description: spec.description.to_owned(),
            })
            .collect(),
    }
}

/// Runs `B`'s handler on one invocation.
pub fn handle<B: Bot>(call: types::Invocation) -> Vec<types::Action> {
    // A panic traps the instance, and its message would go to a stderr nobody reads: send it
    // to hearth's log instead, where the operator looking into the failure will find it.
    // (`info` reads "panicked at FILE:LINE:COLUMN:" and the message.)
    std::panic::set_hook(Box::new(|info| log::error(&info.to_string())));
    B::handle(&Command::from(call))
        .into_actions()
        .into_iter()
        .map(Into::into)
        .collect()
}
