//! Room codes: 6 characters from an alphabet without look-alikes (no 0/O, 1/I/L), drawn from
//! the OS CSPRNG, accepted in any case.

pub const ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub const LENGTH: usize = 6;

/// A fresh random code. Rejection sampling keeps every character equally likely.
pub fn generate() -> Result<String, getrandom::Error> {
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut code = String::with_capacity(LENGTH);
    let mut bytes = [0u8; 16];
    while code.len() < LENGTH {
        getrandom::fill(&mut bytes)?;
        for b in bytes.iter().filter(|b| **b < limit) {
            if code.len() < LENGTH {
                code.push(ALPHABET[usize::from(*b) % ALPHABET.len()] as char);
            }
        }
    }
    Ok(code)
}

/// The canonical (upper-case) form of a code, or `None` if it cannot be a code.
pub fn normalize(input: &str) -> Option<String> {
    let code = input.trim().to_ascii_uppercase();
    (code.len() == LENGTH && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_use_the_alphabet() {
        for _ in 0..200 {
            let code = generate().unwrap();
            assert_eq!(normalize(&code).as_deref(), Some(code.as_str()));
        }
    }

    #[test]
    fn normalize_table() {
        let cases = [
            ("K7MP2X", Some("K7MP2X")),
            ("k7mp2x", Some("K7MP2X")),
            (" k7mp2x ", Some("K7MP2X")),
            ("K7MP2", None),
            ("K7MP2XX", None),
            ("K0MP2X", None),
            ("KOMP2X", None),
            ("K1MP2X", None),
            ("KLMP2X", None),
            ("KIMP2X", None),
            ("K7MP2é", None),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize(input).as_deref(), expected, "{input}");
        }
    }
}
