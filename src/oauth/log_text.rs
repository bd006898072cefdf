//! Text a provider chose, made safe for a log line.

/// The most characters of a provider's text that go into one log line.
const LOG_TEXT_CHARS: usize = 200;

/// Text from a provider (an `error_description`, a claim) made safe for a log line: control
/// characters (newlines, ANSI escapes) and other invisible ones are written as escapes, so
/// nobody can forge log lines or recolour a terminal; at most `LOG_TEXT_CHARS` (200) characters.
pub fn log_text(text: &str) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == LOG_TEXT_CHARS {
            out.push_str("[...]");
            break;
        }
        if c.is_control() || is_format(c) || is_line_break(c) || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Unicode format characters (bidi overrides, zero-width ones): invisible, but they reorder
/// or hide what a log line shows.
fn is_format(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.general_category() == GeneralCategory::Format
}

/// The Unicode line and paragraph separators, which some log viewers break lines at.
fn is_line_break(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    #[test]
    fn provider_text_is_escaped_and_capped_for_the_log() {
        use super::{log_text, LOG_TEXT_CHARS};
        for (input, expected) in [
            ("plain words", "plain words"),
            ("two\nlines", "two\\nlines"),
            ("cr\r\nforged=1", "cr\\r\\nforged=1"),
            ("\u{1b}[31mred\u{1b}[0m", "\\u{1b}[31mred\\u{1b}[0m"),
            ("tab\there", "tab\\there"),
            ("back\\slash", "back\\\\slash"),
            ("bidi\u{202e}txt", "bidi\\u{202e}txt"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
            ("del\u{7f}c1\u{9b}", "del\\u{7f}c1\\u{9b}"),
            ("ünïcode ok", "ünïcode ok"),
        ] {
            assert_eq!(log_text(input), expected, "{input:?}");
        }
        let long = log_text(&"a".repeat(10_000));
        assert_eq!(long, format!("{}[...]", "a".repeat(LOG_TEXT_CHARS)));
        assert!(!log_text(&"\n".repeat(500)).contains('\n'));
    }
}
