//! What runs on the host: judging one cycle from its two reports (`compare`), and the table of
//! a campaign from the judged cycles (`table`).
//!
//! An acked message survived if the history after the cut holds exactly one item with its
//! text, at the seq its ack named. If the second boot served no history (hearth refused to
//! start, hung, or failed to answer), every acked message of the cycle counts as lost.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Map, Value};

use crate::texts::Size;

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The report of the boot that was cut.
    #[arg(long)]
    pub sent: PathBuf,
    /// The report of the boot after the cut.
    #[arg(long)]
    pub verified: PathBuf,
    /// A JSON object of the host's own facts about the cycle (number, configuration, when it
    /// cut), copied into the result.
    #[arg(long, default_value = "{}")]
    pub meta: String,
}

#[derive(clap::Args, Debug)]
pub struct TableArgs {
    /// The results file: one `compare` line per cycle.
    pub results: PathBuf,
}

/// The complete lines of a report: a cut can leave the last one half written. A report that
/// was never written (the guest did not get that far) has none.
fn lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    Ok(complete_lines(&String::from_utf8_lossy(&bytes)))
}

fn complete_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect();
    lines.pop();
    lines
}

struct Ack {
    seq: u64,
    digest: String,
}

/// Prints the cycle's result as one JSON line.
pub fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let meta = match serde_json::from_str(&args.meta)? {
        Value::Object(meta) => meta,
        _ => anyhow::bail!("--meta must be a JSON object"),
    };
    let result = judge(meta, &lines(&args.sent)?, &lines(&args.verified)?)?;
    println!("{result}");
    Ok(())
}

/// The cycle's result: the host's facts, how the second start went, and per size the acked
/// messages and how many of them the history lacks (`missing`), holds more than once
/// (`duplicated`) or holds at another seq (`moved`).
fn judge(
    mut result: Map<String, Value>,
    sent: &[String],
    verified: &[String],
) -> anyhow::Result<Value> {
    let mut rooms: Vec<(String, String)> = Vec::new();
    let mut acks: HashMap<String, Vec<Ack>> = HashMap::new();
    let mut notes = Vec::new();
    for line in sent {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["room", size, code] => rooms.push((size.to_string(), code.to_string())),
            ["ack", code, _reference, seq, digest, _bytes] => {
                let seq = seq.parse().with_context(|| format!("bad line {line:?}"))?;
                acks.entry(code.to_string()).or_default().push(Ack {
                    seq,
                    digest: digest.to_string(),
                });
            }
            ["start", ..] if words.get(1) != Some(&"ok") => notes.push(format!("boot 1: {line}")),
            ["socket" | "refused" | "exited" | "said", ..] => notes.push(format!("boot 1: {line}")),
            _ => {}
        }
    }

    // Room code -> (seq, digest) of every item served after the cut.
    let mut history: HashMap<String, Vec<(u64, String)>> = HashMap::new();
    let (mut start, mut end, mut said) = (String::from("none"), String::from("none"), Vec::new());
    let (mut files, mut empty_files) = (0, Vec::new());
    for line in verified {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["item", code, seq, _kind, digest, _bytes] => {
                let seq = seq.parse().with_context(|| format!("bad line {line:?}"))?;
                history
                    .entry(code.to_string())
                    .or_default()
                    .push((seq, digest.to_string()));
            }
            ["history", code, _count] => {
                history.entry(code.to_string()).or_default();
            }
            ["start", rest @ ..] => start = rest.join(" "),
            ["verify-end", rest @ ..] => end = rest.join(" "),
            ["said", rest @ ..] => said.push(rest.join(" ")),
            ["file", bytes, path @ ..] => {
                files += 1;
                if *bytes == "0" {
                    empty_files.push(path.join(" "));
                }
            }
            ["login" | "exited", ..] => notes.push(format!("boot 2: {line}")),
            _ => {}
        }
    }
    let served = end == "ok";
    let refused = !start.starts_with("ok");
    // No `start` line: the second boot never got as far as starting hearth (the guest, its
    // disk or the driver failed), which says nothing about the store.
    let harness_failed = start == "none";

    let mut sizes = Map::new();
    for (size, code) in &rooms {
        let acked = acks.get(code).map(Vec::as_slice).unwrap_or_default();
        let items = history.get(code).map(Vec::as_slice).unwrap_or_default();
        let mut by_digest: HashMap<&str, Vec<u64>> = HashMap::new();
        for (seq, digest) in items {
            by_digest.entry(digest).or_default().push(*seq);
        }
        let (mut missing, mut duplicated, mut moved) = (0, 0, 0);
        for ack in acked {
            match by_digest.get(ack.digest.as_str()).map(Vec::as_slice) {
                _ if !served => missing += 1,
                None | Some([]) => missing += 1,
                Some([seq]) if *seq == ack.seq => {}
                Some([_]) => moved += 1,
                Some(_) => duplicated += 1,
            }
        }
        sizes.insert(
            size.clone(),
            json!({
                "room": code,
                "acked": acked.len(),
                "last_acked_seq": acked.iter().map(|a| a.seq).max(),
                "history_items": items.len(),
                "room_served": history.contains_key(code),
                "missing": missing,
                "duplicated": duplicated,
                "moved": moved,
                "lost": missing + duplicated + moved,
            }),
        );
    }
    result.insert("start".into(), json!(start));
    result.insert("refused".into(), json!(refused && !harness_failed));
    result.insert("harness_failed".into(), json!(harness_failed));
    result.insert("verify".into(), json!(end));
    result.insert("files_after_cut".into(), json!(files));
    if !empty_files.is_empty() {
        result.insert("empty_files_after_cut".into(), json!(empty_files));
    }
    if !said.is_empty() {
        result.insert("said".into(), json!(said));
    }
    if !notes.is_empty() {
        result.insert("notes".into(), json!(notes));
    }
    result.insert("sizes".into(), Value::Object(sizes));
    Ok(Value::Object(result))
}

/// Reads judged cycles on stdin and prints one line for a person about each.
pub fn summary() -> anyhow::Result<()> {
    for line in std::io::stdin().lines() {
        let cycle: Value = serde_json::from_str(&line?)?;
        let mut sizes = Vec::new();
        if let Some(map) = cycle["sizes"].as_object() {
            for (name, size) in map {
                sizes.push(format!(
                    "{name} {}/{} lost",
                    size["lost"].as_u64().unwrap_or(0),
                    size["acked"].as_u64().unwrap_or(0)
                ));
            }
        }
        let empty = cycle["empty_files_after_cut"]
            .as_array()
            .map_or(0, Vec::len);
        println!(
            "cycle {} ({}): cut {} s after the first ack; start {}; {}; {} empty files; {} s",
            cycle["cycle"],
            cycle["config"].as_str().unwrap_or("?"),
            cycle["cut_after_s"],
            cycle["start"].as_str().unwrap_or("?"),
            sizes.join(", "),
            empty,
            cycle["cycle_s"]
        );
        if let Some(said) = cycle["said"].as_array() {
            for line in said.iter().rev().take(3).rev() {
                println!("    hearth said: {}", line.as_str().unwrap_or_default());
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Row {
    cuts: usize,
    acked: u64,
    cuts_with_loss: usize,
    lost: u64,
    most_lost: u64,
    refused: usize,
}

/// Prints the campaign's table (Markdown), one block of rows per configuration.
pub fn table(args: TableArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.results)
        .with_context(|| format!("reading {}", args.results.display()))?;
    let mut rows: BTreeMap<(String, Size), Row> = BTreeMap::new();
    let (mut cycles, mut without_acks, mut harness_failed) = (0, 0, 0);
    let mut seconds = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let cycle: Value = serde_json::from_str(line)?;
        cycles += 1;
        if let Some(s) = cycle["cycle_s"].as_f64() {
            seconds.push(s);
        }
        // Older results have no `harness_failed`: their `start` says the same.
        if cycle["harness_failed"]
            .as_bool()
            .unwrap_or(cycle["start"] == "none")
        {
            harness_failed += 1;
            continue;
        }
        let config = cycle["config"].as_str().unwrap_or("?").to_string();
        let refused = cycle["refused"].as_bool().unwrap_or(true);
        let Some(sizes) = cycle["sizes"].as_object() else {
            continue;
        };
        if sizes
            .values()
            .all(|size| size["acked"].as_u64().unwrap_or(0) == 0)
        {
            without_acks += 1;
        }
        for (name, size) in sizes {
            let acked = size["acked"].as_u64().unwrap_or(0);
            if acked == 0 {
                continue;
            }
            let lost = size["lost"].as_u64().unwrap_or(0);
            let row = rows.entry((config.clone(), name.parse()?)).or_default();
            row.cuts += 1;
            row.acked += acked;
            row.lost += lost;
            row.most_lost = row.most_lost.max(lost);
            row.cuts_with_loss += usize::from(lost > 0);
            row.refused += usize::from(refused);
        }
    }
    println!("| text limits | messages | cuts | acked messages | cuts with acked messages missing | acked lost (most in one cut) | store refused to start |");
    println!("|---|---|---|---|---|---|---|");
    for ((config, size), row) in &rows {
        println!(
            "| {config} | {} | {} | {} | {} | {} ({}) | {} |",
            size.describe(),
            row.cuts,
            row.acked,
            row.cuts_with_loss,
            row.lost,
            row.most_lost,
            row.refused
        );
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds.get(seconds.len() / 2).copied().unwrap_or(0.0);
    println!();
    println!(
        "{cycles} cycles ({without_acks} cut before any ack, {harness_failed} whose second boot \
         never started hearth: not counted); a cut counts for a size when that size had at least \
         one ack; median cycle {median:.0} s."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(text: &str) -> Vec<String> {
        complete_lines(text)
    }

    const SENT: &str = "start ok 1.0\ntoken T\nroom emoji AAAAAA\nroom short BBBBBB\n\
        ack AAAAAA 1 2 d1 16000\nack AAAAAA 2 3 d2 16000\nack AAAAAA 3 4 d3 16000\n\
        ack BBBBBB 1 2 e1 20\nack BBBBBB 2 3 e2";

    fn sizes(result: &Value, size: &str) -> (u64, u64, u64, u64, u64) {
        let s = &result["sizes"][size];
        let n = |k: &str| s[k].as_u64().unwrap_or(99);
        (
            n("acked"),
            n("missing"),
            n("duplicated"),
            n("moved"),
            n("lost"),
        )
    }

    #[test]
    fn every_acked_message_once_at_its_seq_is_no_loss() {
        let verified = report(
            "start ok 2.0\nitem AAAAAA 1 system - 0\nitem AAAAAA 2 chat d1 16000\n\
             item AAAAAA 3 chat d2 16000\nitem AAAAAA 4 chat d3 16000\nitem AAAAAA 5 chat d4 16000\n\
             history AAAAAA 5\nitem BBBBBB 2 chat e1 20\nhistory BBBBBB 1\nverify-end ok\n",
        );
        let result = judge(Map::new(), &report(SENT), &verified).unwrap();
        // The half-written last ack of BBBBBB does not count.
        assert_eq!(sizes(&result, "short"), (1, 0, 0, 0, 0));
        assert_eq!(sizes(&result, "emoji"), (3, 0, 0, 0, 0));
        assert_eq!(result["refused"], false);
    }

    #[test]
    fn missing_duplicated_and_moved_messages_are_lost() {
        let verified = report(
            "start ok 2.0\nitem AAAAAA 2 chat d1 1\nitem AAAAAA 3 chat d1 1\n\
             item AAAAAA 4 chat d2 1\nhistory AAAAAA 3\nverify-end ok\n",
        );
        let result = judge(Map::new(), &report(SENT), &verified).unwrap();
        assert_eq!(sizes(&result, "emoji"), (3, 1, 1, 1, 3));
        // A room the history lacks altogether lost all its acked messages.
        assert_eq!(sizes(&result, "short"), (1, 1, 0, 0, 1));
        assert_eq!(result["sizes"]["short"]["room_served"], false);
    }

    #[test]
    fn a_store_that_refused_to_start_lost_everything_acked() {
        let verified = report(
            "file 0 /data/hearth-data/db/blobs/1\nstart exited exit status: 101\n\
             said panicked at serialization.rs\nverify-end refused\n",
        );
        let result = judge(Map::new(), &report(SENT), &verified).unwrap();
        assert_eq!(result["refused"], true);
        assert_eq!(sizes(&result, "emoji"), (3, 3, 0, 0, 3));
        assert_eq!(
            result["empty_files_after_cut"][0],
            "/data/hearth-data/db/blobs/1"
        );
        assert_eq!(result["said"][0], "panicked at serialization.rs");
        assert_eq!(result["harness_failed"], false);
    }

    #[test]
    fn a_second_boot_that_never_started_hearth_is_the_harness_failing() {
        let verified = report("boot verify 4.5\nmounted 7.0\ndriver-exit 2\n");
        let result = judge(Map::new(), &report(SENT), &verified).unwrap();
        assert_eq!(result["harness_failed"], true);
        assert_eq!(result["refused"], false);
    }
}
