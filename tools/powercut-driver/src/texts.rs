//! The message sizes under test, the texts sent for each, and the digest that names a text in
//! the logs (the serial console carries digests, not 64 KB texts).

use std::fmt;
use std::str::FromStr;

use anyhow::bail;

/// Characters in the long texts: the server's default `rooms.max_text_chars`.
const LONG_CHARS: usize = 4000;

/// One size of message; each gets a room of its own in a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Size {
    /// About 20 ASCII characters.
    Short,
    /// 4,000 ASCII characters (4 KB).
    Ascii,
    /// 4,000 CJK characters (12 KB in UTF-8).
    Cjk,
    /// 4,000 emoji (16 KB in UTF-8).
    Emoji,
    /// The largest `send` frame the server accepts (`ws.max_frame_bytes`), filled with emoji:
    /// needs `rooms.max_text_chars = 0`.
    Frame,
}

pub const ALL: [Size; 5] = [
    Size::Short,
    Size::Ascii,
    Size::Cjk,
    Size::Emoji,
    Size::Frame,
];

impl Size {
    pub fn name(self) -> &'static str {
        match self {
            Size::Short => "short",
            Size::Ascii => "ascii",
            Size::Cjk => "cjk",
            Size::Emoji => "emoji",
            Size::Frame => "frame",
        }
    }

    /// How the benchmark's table names it.
    pub fn describe(self) -> &'static str {
        match self {
            Size::Short => "short texts",
            Size::Ascii => "4,000 ASCII chars (4 KB)",
            Size::Cjk => "4,000 CJK chars (12 KB)",
            Size::Emoji => "4,000 emoji (16 KB)",
            Size::Frame => "largest frame (64 KiB, emoji)",
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Size {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Size> {
        match ALL.iter().find(|size| size.name() == s) {
            Some(size) => Ok(*size),
            None => bail!("unknown size {s:?}: one of short, ascii, cjk, emoji, frame"),
        }
    }
}

/// The text of message `n` of a size: it starts with its size and number, so that every text
/// of a cycle is different, and is filled with characters that vary with `n`.
/// `frame_bytes` is the whole `send` frame's budget for [`Size::Frame`]: the text gets what
/// the frame's other fields (`room`, `ref`) leave.
pub fn text(size: Size, n: u64, frame_bytes: usize, room: &str) -> String {
    let prefix = format!("{size}-{n} ");
    match size {
        Size::Short => format!("{prefix}hello from the power-cut check"),
        Size::Ascii => fill(prefix, LONG_CHARS, n, |i| char::from(b'a' + (i % 26) as u8)),
        Size::Cjk => fill(prefix, LONG_CHARS, n, |i| {
            char::from_u32(0x4E00 + (i % 20_000) as u32).unwrap_or('中')
        }),
        Size::Emoji => fill(prefix, LONG_CHARS, n, emoji),
        Size::Frame => {
            let overhead = send_frame(room, &reference(n), "").len();
            let budget = frame_bytes.saturating_sub(overhead);
            let mut text = prefix;
            let mut i = n as usize;
            while text.len() + 4 <= budget {
                text.push(emoji(i));
                i += 1;
            }
            while text.len() < budget {
                text.push('x');
            }
            text
        }
    }
}

/// Single-code-point emoji of 4 bytes each (U+1F600 ..= U+1F64F).
fn emoji(i: usize) -> char {
    char::from_u32(0x1F600 + (i % 80) as u32).unwrap_or('😀')
}

fn fill(mut text: String, chars: usize, n: u64, pick: impl Fn(usize) -> char) -> String {
    let start = text.chars().count();
    text.extend((start..chars).map(|i| pick(i + n as usize)));
    text
}

/// The `ref` of message `n`.
pub fn reference(n: u64) -> String {
    n.to_string()
}

/// The `send` frame, exactly as the driver puts it on the socket.
pub fn send_frame(room: &str, reference: &str, text: &str) -> String {
    serde_json::json!({"type": "send", "room": room, "ref": reference, "text": text}).to_string()
}

/// FNV-1a, 64 bits: enough to tell the texts of one cycle apart, and the same in the guest
/// and on the host.
pub fn digest(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_have_their_characters_and_bytes() {
        for (size, bytes_per_char) in [(Size::Ascii, 1), (Size::Cjk, 3), (Size::Emoji, 4)] {
            let text = text(size, 123, 0, "ABCDEF");
            assert_eq!(text.chars().count(), LONG_CHARS, "{size}");
            let prefix = format!("{size}-123 ").len();
            assert_eq!(text.len(), prefix + (LONG_CHARS - prefix) * bytes_per_char);
        }
    }

    #[test]
    fn a_frame_text_fills_the_frame_exactly() {
        for n in [0, 7, 123_456] {
            let text = text(Size::Frame, n, 65_536, "ABCDEF");
            assert_eq!(send_frame("ABCDEF", &reference(n), &text).len(), 65_536);
        }
    }

    #[test]
    fn texts_differ_by_number() {
        assert_ne!(
            digest(&text(Size::Emoji, 1, 0, "")),
            digest(&text(Size::Emoji, 2, 0, ""))
        );
    }
}
