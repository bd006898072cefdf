//! The `testbot` bot, which hearth's integration tests load to prove the sandbox: each command
//! exercises one import or one way of misbehaving (a trap, an endless loop, unbounded memory).
//! It is never bundled with hearth.

use std::hint::black_box;

use hearth_bot_sdk::{http, kv, setting, Bot, Command, CommandSpec, Response};

/// How many characters of a fetched body `/fetch` shows.
const FETCH_SHOWN_CHARS: usize = 200;
/// The size of each value `/kvfill` writes.
const FILL_VALUE_BYTES: usize = 64 * 1024;
/// Where `/kvfill` gives up if no quota stops it: 256 MiB, far past any sane quota.
const FILL_MAX_WRITES: u32 = 4096;
/// The size of each block `/hog` holds on to.
const HOG_CHUNK_BYTES: usize = 1024 * 1024;

struct TestBot;

impl Bot for TestBot {
    const NAME: &'static str = "testbot";
    const COMMANDS: &'static [CommandSpec] = &[
        CommandSpec::new("echo", "/echo TEXT", "Replies TEXT"),
        CommandSpec::new("multi", "/multi", "Two replies and a reaction"),
        CommandSpec::new("crash", "/crash", "Panics, which traps"),
        CommandSpec::new("spin", "/spin", "Loops forever without calling the host"),
        CommandSpec::new("hog", "/hog", "Allocates memory without bound"),
        CommandSpec::new(
            "fetch",
            "/fetch URL",
            "GETs URL and shows the status and body",
        ),
        CommandSpec::new("kvset", "/kvset KEY VALUE", "Stores VALUE under KEY"),
        CommandSpec::new("kvget", "/kvget KEY", "Shows the value under KEY"),
        CommandSpec::new(
            "kvfill",
            "/kvfill",
            "Writes 64 KiB values until the quota stops it",
        ),
        CommandSpec::new("setting", "/setting KEY", "Shows a setting"),
        CommandSpec::new("whoami", "/whoami", "Shows the caller, room and seq"),
    ];

    fn handle(command: &Command) -> Response {
        match command.name.as_str() {
            "echo" => Response::reply(echo(&command.args)),
            "multi" => Response::reply("first").and_reply("second").and_react("👍"),
            "crash" => panic!("testbot crashed on purpose"),
            "spin" => spin(),
            "hog" => hog(),
            "fetch" => Response::reply(fetch_summary(http::get(&command.args))),
            "kvset" => {
                let (key, value) = command.split_args();
                Response::reply(match kv::set(key, value) {
                    Ok(()) => "ok".to_owned(),
                    Err(error) => format!("error: {error}"),
                })
            }
            "kvget" => Response::reply(
                kv::get_string(&command.args).unwrap_or_else(|| "(none)".to_owned()),
            ),
            "kvfill" => Response::reply(kv_fill(command.seq)),
            "setting" => {
                Response::reply(setting(&command.args).unwrap_or_else(|| "(unset)".to_owned()))
            }
            "whoami" => Response::reply(whoami(command)),
            other => Response::reply(format!("unknown command /{other}")),
        }
    }
}

hearth_bot_sdk::register_bot!(TestBot);

fn echo(args: &str) -> String {
    if args.is_empty() {
        "(empty)".to_owned()
    } else {
        args.to_owned()
    }
}

/// Counts forever. `black_box` keeps the optimiser from proving the loop does nothing, and
/// there is no host call in it, so only the host's CPU deadline can stop it.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Holds on to ever more 1 MiB blocks, each filled so the memory is really touched, until the
/// host refuses to grow the instance's memory and the allocation failure traps.
fn hog() -> ! {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        held.push(vec![0xA5; HOG_CHUNK_BYTES]);
        black_box(&held);
    }
}

/// `status N: BODY` with the first 200 characters of the body, or `error: WHY`.
fn fetch_summary(result: Result<http::Response, http::HttpError>) -> String {
    match result {
        Ok(response) => {
            let shown: String = response.text().chars().take(FETCH_SHOWN_CHARS).collect();
            format!("status {}: {shown}", response.status)
        }
        Err(error) => format!("error: {error}"),
    }
}

/// Writes 64 KiB values under keys no earlier call used until a write fails, and says after how
/// many writes it stopped.
fn kv_fill(seq: u64) -> String {
    let value = vec![b'x'; FILL_VALUE_BYTES];
    for writes in 0..FILL_MAX_WRITES {
        match kv::set(&format!("fill/{seq}/{writes}"), &value) {
            Ok(()) => {}
            Err(kv::KvError::QuotaExceeded) => return format!("quota after {writes} writes"),
            Err(error) => return format!("error after {writes} writes: {error}"),
        }
    }
    format!("no quota after {FILL_MAX_WRITES} writes")
}

fn whoami(command: &Command) -> String {
    format!(
        "{} in {}, seq {}",
        command.caller, command.room, command.seq
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_is_valid() {
        assert_eq!(hearth_bot_sdk::check_manifest::<TestBot>(), Ok(()));
    }

    #[test]
    fn echo_replies_its_arguments_or_says_they_are_empty() {
        assert_eq!(echo("hello there"), "hello there");
        assert_eq!(echo(""), "(empty)");
    }

    #[test]
    fn multi_is_two_replies_then_a_reaction() {
        let command = Command {
            name: "multi".into(),
            ..Default::default()
        };
        let expected = Response::reply("first").and_reply("second").and_react("👍");
        assert_eq!(TestBot::handle(&command), expected);
    }

    #[test]
    fn fetch_shows_the_status_and_the_start_of_the_body_or_the_error() {
        let response = |status, body: &str| http::Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        };
        assert_eq!(
            fetch_summary(Ok(response(200, "hello"))),
            "status 200: hello"
        );
        let long = "é".repeat(FETCH_SHOWN_CHARS + 50);
        let shown = fetch_summary(Ok(response(404, &long)));
        assert_eq!(
            shown,
            format!("status 404: {}", "é".repeat(FETCH_SHOWN_CHARS))
        );
        let refused = fetch_summary(Err(http::HttpError::NotAllowed("10.0.0.1".into())));
        assert_eq!(refused, "error: not allowed: 10.0.0.1");
        assert_eq!(
            fetch_summary(Err(http::HttpError::Timeout)),
            "error: timed out"
        );
    }

    #[test]
    fn whoami_names_caller_room_and_seq() {
        let command = Command {
            room: "ab12cd".into(),
            caller: "alice".into(),
            seq: 7,
            ..Default::default()
        };
        assert_eq!(whoami(&command), "alice in ab12cd, seq 7");
    }
}
