//! The `stocks` bot: `/stock SYMBOL` answers with the latest quote from Stooq's CSV endpoint.
//!
//! Everything but the one HTTP call is in `quote`, as pure functions with their tests.

mod quote;

use hearth_bot_sdk::{http, log, setting, Bot, Command, CommandSpec, Response};

/// Where quotes come from unless `[plugin.stocks.settings] base_url` says otherwise (a test
/// server, a mirror).
const DEFAULT_BASE_URL: &str = "https://stooq.com";

struct Stocks;

impl Bot for Stocks {
    const NAME: &'static str = "stocks";
    const COMMANDS: &'static [CommandSpec] = &[CommandSpec::new(
        "stock",
        "/stock SYMBOL",
        "The latest price of a stock, from Stooq (AAPL, MSFT.US, ^SPX)",
    )];

    fn handle(command: &Command) -> Response {
        let base_url = setting("base_url").filter(|url| !url.is_empty());
        let base_url = base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let answer = quote::answer(&command.args, base_url, http::get);
        if let Some(detail) = &answer.log {
            log::warn(detail);
        }
        Response::reply(answer.reply)
    }
}

hearth_bot_sdk::register_bot!(Stocks);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_is_valid() {
        assert_eq!(hearth_bot_sdk::check_manifest::<Stocks>(), Ok(()));
    }
}
