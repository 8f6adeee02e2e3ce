//! Comparing names without regard to case, beyond ASCII (É as é), the way the name indexes
//! allow: they hold names with ASCII lowercased and other letters as written, so a prefix is
//! read once for each case its first letters beyond ASCII can have there ([`key_spellings`]),
//! and values are compared folded with the same rule ([`fold_case`]).

/// How many letters of a query, beyond ASCII, are searched in both cases (see
/// [`key_spellings`]): at most 2^3 = 8 spellings of a query, each a range of each index.
pub const MAX_CASED_LETTERS: usize = 3;

/// `text` as names compare: without regard to case. ASCII letters are lowercased, and so is
/// every other letter that has a one-letter lowercase whose uppercase is that letter again
/// (`É`→`é`, `Ø`→`ø`, `Ж`→`ж`, `Σ`→`σ`); anything else compares as written (`İ`, whose
/// lowercase is two characters, the Kelvin sign, `ß`). This is the rule [`key_spellings`]
/// can find in the indexes, which lowercase ASCII only.
pub fn fold_case(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.chars().map(fold_char).collect()
}

/// Whether `a` and `b` are the same text without regard to case ([`fold_case`]), without
/// copying either.
pub fn same_folded(a: &str, b: &str) -> bool {
    a.chars().map(fold_char).eq(b.chars().map(fold_char))
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    match one_char(c.to_lowercase()) {
        Some(lower) if lower != c && one_char(lower.to_uppercase()) == Some(c) => lower,
        _ => c,
    }
}

fn one_char(mut chars: impl Iterator<Item = char>) -> Option<char> {
    match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// The index keys a name starting with `prefix` (in any case, by [`fold_case`]) can start
/// with. The name and e-mail indexes hold the values with ASCII letters lowercased and every
/// other letter as written, so `élo` is searched as `élo` and `Élo`; each of the first
/// [`MAX_CASED_LETTERS`] letters beyond ASCII that have two cases doubles the spellings, and
/// later ones are searched in lowercase only (`ÉLODIE DUPRÉ` typed finds `Élodie Dupré`, and
/// `ÉÉÉÉ` finds `éééé` but not `ÉÉÉÉ`).
pub fn key_spellings(prefix: &str) -> Vec<String> {
    let mut spellings = vec![String::with_capacity(prefix.len())];
    let mut cased = 0;
    for c in prefix.chars().map(fold_char) {
        let upper = one_char(c.to_uppercase()).filter(|&u| u != c && fold_char(u) == c);
        match upper {
            Some(upper) if !c.is_ascii() && cased < MAX_CASED_LETTERS => {
                cased += 1;
                let mut both = Vec::with_capacity(spellings.len() * 2);
                for spelling in spellings {
                    let mut other = spelling.clone();
                    other.push(upper);
                    let mut spelling = spelling;
                    spelling.push(c);
                    both.push(spelling);
                    both.push(other);
                }
                spellings = both;
            }
            _ => spellings.iter_mut().for_each(|s| s.push(c)),
        }
    }
    spellings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_beyond_ascii_compare_without_case_and_are_searched_in_both() {
        assert_eq!(
            fold_case("ÉLODIE Dupré ØRSTED Жанна ΣΟΦΙΑ"),
            "élodie dupré ørsted жанна σοφια"
        );
        // Letters without a one-letter lowercase that maps back compare as written.
        assert_eq!(fold_case("İ\u{212A}ß"), "İ\u{212A}ß");
        assert!(same_folded("Élodie DUPRÉ", "élodie dupré"));
        assert!(!same_folded("Élodie", "elodie") && !same_folded("Élodie", "Élodi"));
        assert_eq!(key_spellings("Ann"), vec!["ann"]);
        assert_eq!(key_spellings("ÉLO"), vec!["élo", "Élo"]);
        assert_eq!(
            key_spellings("élodie dupré"),
            vec![
                "élodie dupré",
                "élodie duprÉ",
                "Élodie dupré",
                "Élodie duprÉ"
            ]
        );
        // Only the first MAX_CASED_LETTERS such letters double the spellings.
        let many = key_spellings("ééééé");
        assert_eq!(many.len(), 1 << MAX_CASED_LETTERS);
        assert!(many.contains(&"ÉÉÉéé".to_owned()));
        assert!(many.iter().all(|s| s.ends_with("éé")));
        // Every spelling folds back to the query.
        for query in ["Ærø straße", "ΣΟΦΙΑ", "ǅemal"] {
            for spelling in key_spellings(query) {
                assert_eq!(fold_case(&spelling), fold_case(query), "{spelling}");
            }
        }
    }
}
