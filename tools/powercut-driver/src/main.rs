//! `powercut-driver`: the client of the power-cut benchmark (packaging/powercut/powercut.sh).
//!
//! In the guest, `send` starts hearth, signs up, makes one room per message size and sends to
//! all of them until the host cuts the power, reporting every ack; after the cut, `verify`
//! starts hearth on the same disk and reports whether it started and every item it serves. On
//! the host, `compare` judges one cycle from the two reports, `summary` says it in a line, and
//! `table` sums up a campaign.
//!
//! # Layout
//! - `texts`: the sizes, the texts sent for each, and the digest that names a text in reports.
//! - `report`: the line-per-event report the host reads from the guest's serial port.
//! - `server`: starting hearth and telling serving from refused from hung.
//! - `guest`: `send` and `verify`.
//! - `judge`: `compare`, `summary` and `table`.

mod guest;
mod judge;
mod report;
mod server;
mod texts;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Guest, boot 1: send to one room per size until cut, reporting every ack.
    Send(guest::SendArgs),
    /// Guest, boot 2: start hearth on the cut disk and report every item it serves.
    Verify(guest::VerifyArgs),
    /// Host: judge one cycle from the two boots' reports; prints one JSON line.
    Compare(judge::CompareArgs),
    /// Host: one line for a person about each judged cycle read on stdin.
    Summary,
    /// Host: the table of a campaign's results file.
    Table(judge::TableArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Compare(args) => judge::compare(args),
        Command::Summary => judge::summary(),
        Command::Table(args) => judge::table(args),
        Command::Send(args) => runtime()?.block_on(guest::send(args)),
        Command::Verify(args) => runtime()?.block_on(guest::verify(args)),
    }
}

/// One thread: the guest has one CPU, and hearth needs it more.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
