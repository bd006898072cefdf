//! What people and rooms are called, made safe to show: names that look like another's must
//! not be made from invisible or look-alike characters.
//!
//! - Display names and room names: format characters (Unicode category Cf: bidi overrides such
//!   as U+202E, zero-width spaces and joiners) are removed, then the text is NFKC-normalized,
//!   so that compatibility forms (the Kelvin sign, full-width letters, ligatures) become the
//!   letters they look like, and trimmed.
//! - Reactions are real emoji only: one emoji, or one emoji sequence (skin tones, ZWJ
//!   sequences, flags, keycaps), never text or invisible characters.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeEmoji, UnicodeGeneralCategory};

/// A display name or room name as it is stored and shown: no format characters, NFKC, trimmed.
/// The caller checks its length and that it is not empty.
pub fn clean(name: &str) -> String {
    let visible: String = name
        .chars()
        .filter(|c| c.general_category() != GeneralCategory::Format)
        .collect();
    visible.nfkc().collect::<String>().trim().to_string()
}

const ZWJ: char = '\u{200D}';
const VARIATION_EMOJI: char = '\u{FE0F}';
const KEYCAP: char = '\u{20E3}';
const CANCEL_TAG: char = '\u{E007F}';

/// Whether `text` is one emoji: a pictograph (with an optional skin tone and emoji
/// presentation selector), several joined by ZWJ, a flag (two regional indicators, or a black
/// flag with tag characters), or a keycap (`0`-`9`, `#`, `*`, then U+FE0F U+20E3).
pub fn is_emoji(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return false;
    }
    if let [base, VARIATION_EMOJI, KEYCAP] | [base, KEYCAP] = chars[..] {
        return base.is_ascii_digit() || base == '#' || base == '*';
    }
    if chars.len() == 2 && chars.iter().all(|&c| is_regional_indicator(c)) {
        return true;
    }
    // A flag of a region: U+1F3F4, tag letters, the cancel tag.
    if chars[0] == '\u{1F3F4}' && chars.len() > 2 && chars.last() == Some(&CANCEL_TAG) {
        return chars[1..chars.len() - 1].iter().all(|&c| is_tag(c));
    }
    chars.split(|&c| c == ZWJ).all(is_pictograph)
}

/// One pictograph, optionally followed by a skin tone or the emoji presentation selector.
fn is_pictograph(element: &[char]) -> bool {
    let Some((&base, rest)) = element.split_first() else {
        return false; // two joiners in a row, or one at an end
    };
    // Keycap bases and the like are emoji only as keycaps; regional indicators only in pairs.
    if base.is_ascii() || is_regional_indicator(base) || is_skin_tone(base) || !base.is_emoji_char()
    {
        return false;
    }
    match rest {
        [] => true,
        [modifier] => *modifier == VARIATION_EMOJI || is_skin_tone(*modifier),
        [skin, VARIATION_EMOJI] => is_skin_tone(*skin),
        _ => false,
    }
}

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

fn is_skin_tone(c: char) -> bool {
    ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
}

fn is_tag(c: char) -> bool {
    ('\u{E0020}'..='\u{E007E}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_invisible_characters_and_compatibility_forms() {
        assert_eq!(clean("ali\u{200B}ce"), "alice");
        assert_eq!(clean("\u{202E}ecila"), "ecila");
        assert_eq!(clean("\u{212A}ate"), "Kate", "Kelvin sign");
        assert_eq!(clean("ＡＢＣ"), "ABC", "full-width");
        assert_eq!(clean("  Zoë  "), "Zoë");
        assert_eq!(clean("\u{FEFF}\u{2066}"), "");
        // NFKC composes: a decomposed e + combining acute is the one é.
        assert_eq!(clean("e\u{301}"), "é");
    }

    #[test]
    fn only_real_emoji_are_reactions() {
        for emoji in [
            "👍",
            "❤️",
            "👍🏽",
            "👩‍💻",
            "👨‍👩‍👧",
            "🇫🇷",
            "1️⃣",
            "#️⃣",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            "©️",
        ] {
            assert!(is_emoji(emoji), "{emoji:?} is an emoji");
        }
        for text in [
            "",
            "a",
            "ok",
            "1",
            "👍\u{202E}",
            "\u{200B}",
            "👍 ",
            "👍👎",
            "🇫",
            "\u{200D}👍",
            "👍\u{200D}",
            "x\u{FE0F}",
            "🏽",
            "\u{1F3F4}\u{E0067}",
        ] {
            assert!(!is_emoji(text), "{text:?} is not an emoji");
        }
    }
}
