//! From the user's symbol to the reply: validating the symbol, building Stooq's URL, reading its
//! CSV and wording the answer. Pure but for the fetch that [`answer`] is handed, so every path,
//! failures included, is tested here without hearth.

use hearth_bot_sdk::http::{HttpError, Response};

/// The longest symbol accepted, in characters.
const MAX_SYMBOL_CHARS: usize = 20;

/// How much of a rejected symbol the reply quotes back.
const ECHO_CHARS: usize = 24;

/// What `/stock ARGS` gives: the reply the room reads and, when something went wrong on the
/// way to the quote service, the detail for the operator's log (addresses and error texts are
/// for whoever runs the server, not for the people in the room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub reply: String,
    pub log: Option<String>,
}

/// The answer to `/stock ARGS`, fetching with `fetch` from Stooq at `base_url`.
pub fn answer(
    args: &str,
    base_url: &str,
    fetch: impl FnOnce(&str) -> Result<Response, HttpError>,
) -> Answer {
    match quote(args, base_url, fetch) {
        Ok(quote) => Answer {
            reply: describe(&quote),
            log: None,
        },
        Err(failure) => Answer {
            reply: failure.message(),
            log: failure.detail(base_url),
        },
    }
}

/// A quote as Stooq gives it. The price is Stooq's own text, so it keeps Stooq's precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub symbol: String,
    pub close: String,
    /// `None` when Stooq gave none (`N/D`).
    pub date: Option<String>,
    pub time: Option<String>,
}

/// Why there is no quote to show. Each has a reply of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `/stock` with nothing after it.
    NoSymbol,
    /// Not 1 to 20 of the characters a symbol has.
    BadSymbol(String),
    /// The request got no answer.
    Http(HttpError),
    /// Stooq answered with something other than 200.
    Status(u16),
    /// Stooq knows no such symbol: its fields are `N/D`.
    UnknownSymbol(String),
    /// The answer is not the CSV asked for (Stooq sends a line of text when it refuses, for
    /// example over its daily limit).
    Malformed,
}

impl Failure {
    /// What the bot replies.
    pub fn message(&self) -> String {
        match self {
            Failure::NoSymbol => "Usage: /stock SYMBOL, for example /stock AAPL".to_owned(),
            Failure::BadSymbol(input) => format!(
                "\"{}\" is not a stock symbol: use 1 to {MAX_SYMBOL_CHARS} letters, digits, '.', '-' or '^'.",
                shorten(input, ECHO_CHARS)
            ),
            Failure::Http(HttpError::NotAllowed(_) | HttpError::InvalidRequest(_)) => {
                "Couldn't reach the quote service: this server's settings for it need a look (its log says more).".to_owned()
            }
            Failure::Http(HttpError::Timeout) => {
                "The quote service did not answer in time; try again later.".to_owned()
            }
            Failure::Http(HttpError::TooLarge) | Failure::Status(_) => {
                "The quote service sent something other than a quote; try again later.".to_owned()
            }
            Failure::Http(HttpError::Connection(_)) => {
                "Couldn't reach the quote service; try again later.".to_owned()
            }
            Failure::UnknownSymbol(symbol) => {
                format!("No quote for {symbol}: the quote service does not know that symbol.")
            }
            Failure::Malformed => {
                "The quote service sent an answer I could not read; try again later.".to_owned()
            }
        }
    }

    /// The operator's side of a failure to get a quote: what went wrong, and where; `None` for
    /// the replies that say all there is (a bad or unknown symbol).
    pub fn detail(&self, base_url: &str) -> Option<String> {
        let what = match self {
            Failure::NoSymbol | Failure::BadSymbol(_) | Failure::UnknownSymbol(_) => return None,
            Failure::Http(HttpError::NotAllowed(detail)) => {
                format!("not allowed ({detail}): add the host to allow_hosts under [plugin.stocks]")
            }
            Failure::Http(HttpError::InvalidRequest(detail)) => format!(
                "unusable address ({detail}): check base_url under [plugin.stocks.settings]"
            ),
            Failure::Http(HttpError::Timeout) => "no answer in time".to_owned(),
            Failure::Http(HttpError::TooLarge) => "the answer was too large".to_owned(),
            Failure::Http(HttpError::Connection(detail)) => format!("connection failed: {detail}"),
            Failure::Status(status) => format!("answered with HTTP {status}"),
            Failure::Malformed => "the answer is not the expected CSV".to_owned(),
        };
        Some(format!("quote service at {base_url}: {what}"))
    }
}

fn quote(
    args: &str,
    base_url: &str,
    fetch: impl FnOnce(&str) -> Result<Response, HttpError>,
) -> Result<Quote, Failure> {
    let symbol = stooq_symbol(args)?;
    let response = fetch(&quote_url(base_url, &symbol)).map_err(Failure::Http)?;
    if response.status != 200 {
        return Err(Failure::Status(response.status));
    }
    parse_csv(&response.text())
}

/// Stooq's name for what the user typed: lower-cased, and with `.us` appended when it names no
/// market, since a bare symbol means a US stock. Indices (`^spx`) name no market and take no
/// suffix.
pub fn stooq_symbol(input: &str) -> Result<String, Failure> {
    let input = input.trim();
    if input.is_empty() {
        return Err(Failure::NoSymbol);
    }
    let valid_chars = input
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '^'));
    if input.chars().count() > MAX_SYMBOL_CHARS || !valid_chars {
        return Err(Failure::BadSymbol(input.to_owned()));
    }
    let symbol = input.to_ascii_lowercase();
    if symbol.contains('.') || symbol.starts_with('^') {
        Ok(symbol)
    } else {
        Ok(format!("{symbol}.us"))
    }
}

/// The CSV endpoint for one symbol: symbol, date, time, open, high, low, close and volume, with
/// a header line.
pub fn quote_url(base_url: &str, symbol: &str) -> String {
    // `^` is not allowed in a URL's query as it stands; the rest of a symbol's characters are.
    let symbol = symbol.replace('^', "%5E");
    let base_url = base_url.trim_end_matches('/');
    format!("{base_url}/q/l/?s={symbol}&f=sd2t2ohlcv&h&e=csv")
}

/// Reads Stooq's answer: a header line and one row, fields found by their header's name.
pub fn parse_csv(body: &str) -> Result<Quote, Failure> {
    let mut lines = body.lines().map(str::trim).filter(|line| !line.is_empty());
    let (Some(header), Some(row), None) = (lines.next(), lines.next(), lines.next()) else {
        return Err(Failure::Malformed);
    };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let values: Vec<&str> = row.split(',').map(str::trim).collect();
    if names.len() != values.len() {
        return Err(Failure::Malformed);
    }
    let field = |name: &str| {
        names
            .iter()
            .position(|candidate| candidate.eq_ignore_ascii_case(name))
            .map(|index| values[index])
    };
    let (Some(symbol), Some(close)) = (field("Symbol"), field("Close")) else {
        return Err(Failure::Malformed);
    };
    if symbol.is_empty() {
        return Err(Failure::Malformed);
    }
    if close == "N/D" {
        return Err(Failure::UnknownSymbol(symbol.to_ascii_uppercase()));
    }
    if !close.parse::<f64>().is_ok_and(f64::is_finite) {
        return Err(Failure::Malformed);
    }
    let known = |value: Option<&str>| {
        value
            .filter(|v| !v.is_empty() && *v != "N/D")
            .map(str::to_owned)
    };
    Ok(Quote {
        symbol: symbol.to_ascii_uppercase(),
        close: close.to_owned(),
        date: known(field("Date")),
        time: known(field("Time")),
    })
}

/// `AAPL.US quote is $181.18 per share (2024-01-05 22:00:09)`; the part in brackets has what
/// Stooq gave of the date and time.
pub fn describe(quote: &Quote) -> String {
    let when = match (&quote.date, &quote.time) {
        (Some(date), Some(time)) => format!(" ({date} {time})"),
        (Some(date), None) => format!(" ({date})"),
        (None, _) => String::new(),
    };
    format!("{} quote is ${} per share{when}", quote.symbol, quote.close)
}

/// At most `max` characters of `text`, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AAPL_CSV: &str = "Symbol,Date,Time,Open,High,Low,Close,Volume\r\n\
                            AAPL.US,2024-01-05,22:00:09,181.99,182.76,180.17,181.18,62379661\r\n";

    fn ok(status: u16, body: &str) -> Result<Response, HttpError> {
        Ok(Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn symbols_are_validated_lower_cased_and_given_a_market() {
        let cases: &[(&str, Result<&str, Failure>)] = &[
            ("AAPL", Ok("aapl.us")),
            ("  msft ", Ok("msft.us")),
            ("MSFT.US", Ok("msft.us")),
            ("cdr.pl", Ok("cdr.pl")),
            ("BRK-B", Ok("brk-b.us")),
            ("^SPX", Ok("^spx")),
            ("A", Ok("a.us")),
            ("ABCDEFGHIJKLMNOPQRST", Ok("abcdefghijklmnopqrst.us")),
            ("", Err(Failure::NoSymbol)),
            ("   ", Err(Failure::NoSymbol)),
            (
                "ABCDEFGHIJKLMNOPQRSTU",
                Err(Failure::BadSymbol("ABCDEFGHIJKLMNOPQRSTU".into())),
            ),
            ("AAPL MSFT", Err(Failure::BadSymbol("AAPL MSFT".into()))),
            ("aapl&f=x", Err(Failure::BadSymbol("aapl&f=x".into()))),
            ("../admin", Err(Failure::BadSymbol("../admin".into()))),
            ("ÄPPLE", Err(Failure::BadSymbol("ÄPPLE".into()))),
        ];
        for (input, expected) in cases {
            let expected = expected.clone().map(str::to_owned);
            assert_eq!(stooq_symbol(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn the_url_asks_for_one_symbol_as_csv_with_a_header() {
        let cases = [
            (
                "https://stooq.com",
                "aapl.us",
                "https://stooq.com/q/l/?s=aapl.us&f=sd2t2ohlcv&h&e=csv",
            ),
            (
                "http://127.0.0.1:8080/",
                "aapl.us",
                "http://127.0.0.1:8080/q/l/?s=aapl.us&f=sd2t2ohlcv&h&e=csv",
            ),
            (
                "https://stooq.com",
                "^spx",
                "https://stooq.com/q/l/?s=%5Espx&f=sd2t2ohlcv&h&e=csv",
            ),
        ];
        for (base_url, symbol, expected) in cases {
            assert_eq!(quote_url(base_url, symbol), expected);
        }
    }

    #[test]
    fn csv_is_read_by_column_name() {
        let quote = |symbol: &str, close: &str, date: Option<&str>, time: Option<&str>| Quote {
            symbol: symbol.into(),
            close: close.into(),
            date: date.map(Into::into),
            time: time.map(Into::into),
        };
        let cases: &[(&str, Result<Quote, Failure>)] = &[
            (AAPL_CSV, Ok(quote("AAPL.US", "181.18", Some("2024-01-05"), Some("22:00:09")))),
            (
                "Symbol,Date,Time,Open,High,Low,Close,Volume\nmsft.us,2024-01-05,22:00:09,1,2,0.5,370.5,1\n",
                Ok(quote("MSFT.US", "370.5", Some("2024-01-05"), Some("22:00:09"))),
            ),
            ("Close,Symbol\n0.0123,XYZ.US", Ok(quote("XYZ.US", "0.0123", None, None))),
            (
                "Symbol,Date,Time,Close\nX.US,2024-01-05,N/D,10",
                Ok(quote("X.US", "10", Some("2024-01-05"), None)),
            ),
            (
                "Symbol,Date,Time,Open,High,Low,Close,Volume\r\nZZZZ.US,N/D,N/D,N/D,N/D,N/D,N/D,N/D\r\n",
                Err(Failure::UnknownSymbol("ZZZZ.US".into())),
            ),
            ("", Err(Failure::Malformed)),
            ("Symbol,Date,Time,Open,High,Low,Close,Volume\r\n", Err(Failure::Malformed)),
            ("Exceeded the daily hits limit", Err(Failure::Malformed)),
            ("<html><body>Not here</body></html>", Err(Failure::Malformed)),
            ("Symbol,Close\nA.US,1\nB.US,2", Err(Failure::Malformed)),
            ("Symbol,Date,Close\nA.US,1", Err(Failure::Malformed)),
            ("Symbol,Date\nA.US,2024-01-05", Err(Failure::Malformed)),
            ("Symbol,Close\n,1", Err(Failure::Malformed)),
            ("Symbol,Close\nA.US,abc", Err(Failure::Malformed)),
            ("Symbol,Close\nA.US,inf", Err(Failure::Malformed)),
        ];
        for (body, expected) in cases {
            assert_eq!(&parse_csv(body), expected, "body {body:?}");
        }
    }

    #[test]
    fn a_quote_reads_as_one_sentence() {
        let mut quote = Quote {
            symbol: "AAPL.US".into(),
            close: "181.18".into(),
            date: Some("2024-01-05".into()),
            time: Some("22:00:09".into()),
        };
        assert_eq!(
            describe(&quote),
            "AAPL.US quote is $181.18 per share (2024-01-05 22:00:09)"
        );
        quote.time = None;
        assert_eq!(
            describe(&quote),
            "AAPL.US quote is $181.18 per share (2024-01-05)"
        );
        quote.date = None;
        assert_eq!(describe(&quote), "AAPL.US quote is $181.18 per share");
    }

    /// The command's arguments, what the fetch gives, the reply, the detail for the log.
    type Case = (
        &'static str,
        Result<Response, HttpError>,
        &'static str,
        Option<&'static str>,
    );

    #[test]
    fn every_outcome_has_a_short_reply_and_failures_log_their_detail() {
        let not_allowed = "Couldn't reach the quote service: this server's settings for it need a look (its log says more).";
        let not_a_quote = "The quote service sent something other than a quote; try again later.";
        let cases: &[Case] = &[
            ("AAPL", ok(200, AAPL_CSV), "AAPL.US quote is $181.18 per share (2024-01-05 22:00:09)", None),
            ("", ok(200, AAPL_CSV), "Usage: /stock SYMBOL, for example /stock AAPL", None),
            (
                "AAPL; rm -rf /",
                ok(200, AAPL_CSV),
                "\"AAPL; rm -rf /\" is not a stock symbol: use 1 to 20 letters, digits, '.', '-' or '^'.",
                None,
            ),
            (
                "this is a whole sentence, not a symbol",
                ok(200, AAPL_CSV),
                "\"this is a whole sentence…\" is not a stock symbol: use 1 to 20 letters, digits, '.', '-' or '^'.",
                None,
            ),
            (
                "ZZZZ",
                ok(200, "Symbol,Date,Time,Open,High,Low,Close,Volume\r\nZZZZ.US,N/D,N/D,N/D,N/D,N/D,N/D,N/D\r\n"),
                "No quote for ZZZZ.US: the quote service does not know that symbol.",
                None,
            ),
            ("AAPL", ok(503, ""), not_a_quote, Some("answered with HTTP 503")),
            ("AAPL", ok(404, AAPL_CSV), not_a_quote, Some("answered with HTTP 404")),
            (
                "AAPL",
                ok(200, "Exceeded the daily hits limit"),
                "The quote service sent an answer I could not read; try again later.",
                Some("the answer is not the expected CSV"),
            ),
            (
                "AAPL",
                Err(HttpError::NotAllowed("stooq.com".into())),
                not_allowed,
                Some("not allowed (stooq.com): add the host to allow_hosts under [plugin.stocks]"),
            ),
            (
                "AAPL",
                Err(HttpError::InvalidRequest("relative URL".into())),
                not_allowed,
                Some("unusable address (relative URL): check base_url under [plugin.stocks.settings]"),
            ),
            ("AAPL", Err(HttpError::Timeout), "The quote service did not answer in time; try again later.", Some("no answer in time")),
            ("AAPL", Err(HttpError::TooLarge), not_a_quote, Some("the answer was too large")),
            (
                "AAPL",
                Err(HttpError::Connection("error sending request for url (https://stooq.com/q/l/?s=aapl.us)".into())),
                "Couldn't reach the quote service; try again later.",
                Some("connection failed: error sending request for url (https://stooq.com/q/l/?s=aapl.us)"),
            ),
        ];
        for (args, fetched, expected, detail) in cases {
            let answer = answer(args, "https://stooq.com", |url| {
                assert!(
                    url.starts_with("https://stooq.com/q/l/?s="),
                    "fetched {url}"
                );
                fetched.clone()
            });
            assert_eq!(
                answer.reply, *expected,
                "args {args:?}, fetched {fetched:?}"
            );
            assert_eq!(
                answer.log,
                detail.map(|d| format!("quote service at https://stooq.com: {d}")),
                "args {args:?}, fetched {fetched:?}"
            );
            // The room never sees an address or the HTTP client's words.
            assert!(
                !answer.reply.contains("stooq.com") && !answer.reply.contains("request"),
                "{}",
                answer.reply
            );
        }
    }

    #[test]
    fn nothing_is_fetched_for_a_bad_symbol() {
        let answer = answer("no way", "https://stooq.com", |url| panic!("fetched {url}"));
        assert!(
            answer.reply.contains("is not a stock symbol"),
            "{}",
            answer.reply
        );
    }

    #[test]
    fn the_configured_base_url_and_the_stooq_symbol_make_the_url() {
        let mut fetched = String::new();
        answer("aapl", "http://127.0.0.1:9/", |url| {
            fetched = url.to_owned();
            ok(200, AAPL_CSV)
        });
        assert_eq!(
            fetched,
            "http://127.0.0.1:9/q/l/?s=aapl.us&f=sd2t2ohlcv&h&e=csv"
        );
    }
}
