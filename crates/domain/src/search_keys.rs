//! The keys a customer is found by: normalised phones and emails, every substring of the
//! name's 汉字, its pinyin (every reading of a 多音字, toneless, spaces dropped) and
//! initials, Latin words without case or accents. One place for indexing and querying,
//! so a name is always searched the way it was indexed.
//!
//! Read models store each key with its [`KeyKind`], whose number is also its rank: a
//! lookup reads the kinds it can match in that order, each as one B-tree range, so the
//! best matches come first without sorting the matches.

use pinyin::ToPinyinMulti;
use unicode_normalization::UnicodeNormalization;

use crate::contact::{address_key, email_key, phone_key, PhoneRegion};
use crate::values::Contacts;

/// What a key is, and so how good a match on it is: lower codes rank first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// A phone number, E.164.
    Phone,
    /// An email address, lowercase.
    Email,
    /// A postal address (duplicate detection only, never searched).
    Address,
    /// All the 汉字 of the name.
    HanWhole,
    /// A run of 汉字 the name starts with (the surname, say).
    HanStart,
    /// A run of 汉字 inside the name.
    HanInner,
    /// The spelled name from its first syllable or word: pinyin or Latin, lowercase a–z.
    SpellStart,
    /// The spelled name from a later syllable or word (the given name).
    SpellInner,
    /// Initials of every syllable or word, from the first.
    InitialsStart,
    /// Initials from a later syllable or word.
    InitialsInner,
}

impl KeyKind {
    pub const ALL: [KeyKind; 10] = [
        KeyKind::Phone,
        KeyKind::Email,
        KeyKind::Address,
        KeyKind::HanWhole,
        KeyKind::HanStart,
        KeyKind::HanInner,
        KeyKind::SpellStart,
        KeyKind::SpellInner,
        KeyKind::InitialsStart,
        KeyKind::InitialsInner,
    ];

    /// The stored code (`rm_customer_keys.tier`); never change one once shipped.
    pub fn code(self) -> i64 {
        match self {
            KeyKind::Phone => 1,
            KeyKind::Email => 2,
            KeyKind::Address => 3,
            KeyKind::HanWhole => 10,
            KeyKind::HanStart => 11,
            KeyKind::HanInner => 12,
            KeyKind::SpellStart => 20,
            KeyKind::SpellInner => 21,
            KeyKind::InitialsStart => 30,
            KeyKind::InitialsInner => 31,
        }
    }

    pub fn from_code(code: i64) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|kind| kind.code() == code)
    }

    /// Whether a query matches keys of this kind by prefix (spellings, initials) rather
    /// than whole (contacts, 汉字 substrings, which are all indexed).
    pub fn matches_prefix(self) -> bool {
        matches!(
            self,
            KeyKind::SpellStart
                | KeyKind::SpellInner
                | KeyKind::InitialsStart
                | KeyKind::InitialsInner
        )
    }
}

/// One key of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SearchKey {
    pub kind: KeyKind,
    pub key: String,
}

/// 汉字 of a name considered, from its start (names are short; this bounds an
/// organisation's long name).
pub const MAX_HAN: usize = 64;
/// Longest 汉字 substring indexed: a longer query is looked up by its first
/// `MAX_GRAM` characters and checked against the name.
pub const MAX_GRAM: usize = 8;
/// Syllables or words of a name spelled out.
const MAX_TOKENS: usize = 32;
/// Readings combined when 多音字 give a name several spellings.
const MAX_SPELLINGS: usize = 16;
/// Leading 汉字 spelled in every reading: the surname, compound ones (欧阳, 尉迟)
/// included. Later characters take their usual reading, which keeps a name's keys few.
const SURNAME_CHARS: usize = 2;
/// Longest spelled key, in letters; queries are cut to the same length.
pub const MAX_SPELLED: usize = 64;

/// Every key of a customer with this name and these contacts, each once, at its best kind.
/// Phones stored as typed long ago are read with `region` (see [`phone_key`]).
pub fn customer_keys(
    name: Option<&str>,
    contacts: &Contacts,
    region: PhoneRegion,
) -> Vec<SearchKey> {
    let mut keys: Vec<SearchKey> = Vec::new();
    for phone in &contacts.phones {
        if let Some(key) = phone_key(phone, region) {
            keys.push(SearchKey { kind: KeyKind::Phone, key });
        }
    }
    for email in &contacts.emails {
        if let Some(key) = email_key(email) {
            keys.push(SearchKey { kind: KeyKind::Email, key });
        }
    }
    if let Some(key) = contacts.address.as_deref().and_then(address_key) {
        keys.push(SearchKey { kind: KeyKind::Address, key });
    }
    if let Some(name) = name {
        keys.extend(name_keys(name));
    }
    best_of_each(keys)
}

/// Keeps one key per (family, text): the best kind (the lowest code) wins, so a name
/// like 王王 has 王 once, as its start.
fn best_of_each(mut keys: Vec<SearchKey>) -> Vec<SearchKey> {
    keys.sort_by(|a, b| (family(a.kind), &a.key, a.kind).cmp(&(family(b.kind), &b.key, b.kind)));
    keys.dedup_by(|later, first| {
        family(later.kind) == family(first.kind) && later.key == first.key
    });
    keys
}

/// Kinds a query searches together; a key text is kept once per family.
fn family(kind: KeyKind) -> u8 {
    match kind {
        KeyKind::Phone => 0,
        KeyKind::Email => 1,
        KeyKind::Address => 2,
        KeyKind::HanWhole | KeyKind::HanStart | KeyKind::HanInner => 3,
        KeyKind::SpellStart | KeyKind::SpellInner => 4,
        KeyKind::InitialsStart | KeyKind::InitialsInner => 5,
    }
}

/// The keys of a name: 汉字 substrings, spellings and initials.
pub fn name_keys(name: &str) -> Vec<SearchKey> {
    let mut keys = Vec::new();
    let han = han_text(name);
    let chars: Vec<char> = han.chars().take(MAX_HAN).collect();
    if !chars.is_empty() {
        keys.push(SearchKey { kind: KeyKind::HanWhole, key: chars.iter().collect() });
    }
    for start in 0..chars.len() {
        for end in start + 1..=chars.len().min(start + MAX_GRAM) {
            let kind = if start == 0 { KeyKind::HanStart } else { KeyKind::HanInner };
            keys.push(SearchKey { kind, key: chars[start..end].iter().collect() });
        }
    }
    for spelling in spellings(name) {
        for start in 0..spelling.len() {
            let (spell, initials) = if start == 0 {
                (KeyKind::SpellStart, KeyKind::InitialsStart)
            } else {
                (KeyKind::SpellInner, KeyKind::InitialsInner)
            };
            let key: String = spelling[start..].concat().chars().take(MAX_SPELLED).collect();
            keys.push(SearchKey { kind: spell, key });
            let key: String = spelling[start..].iter().filter_map(|t| t.chars().next()).collect();
            keys.push(SearchKey { kind: initials, key });
        }
    }
    best_of_each(keys)
}

/// What a name query looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameQuery {
    /// 汉字 (anything else in the query is ignored): a substring of the name's 汉字.
    Han(String),
    /// Letters a–z: the start of a spelling (pinyin with or without spaces and tones, a
    /// Latin name in any case) or of initials.
    Spelled(String),
}

impl NameQuery {
    /// `None` when the text holds neither 汉字 nor letters.
    pub fn parse(text: &str) -> Option<NameQuery> {
        let han = han_text(text);
        if !han.is_empty() {
            return Some(NameQuery::Han(han.chars().take(MAX_HAN).collect()));
        }
        let letters: String = fold_letters(text).chars().take(MAX_SPELLED).collect();
        (!letters.is_empty()).then_some(NameQuery::Spelled(letters))
    }

    /// The kinds this query can match, best first.
    pub fn kinds(&self) -> &'static [KeyKind] {
        match self {
            NameQuery::Han(_) => &[KeyKind::HanWhole, KeyKind::HanStart, KeyKind::HanInner],
            NameQuery::Spelled(_) => &[
                KeyKind::SpellStart,
                KeyKind::SpellInner,
                KeyKind::InitialsStart,
                KeyKind::InitialsInner,
            ],
        }
    }

    /// The text looked up among keys of `kind`: a long 汉字 query is looked up by its
    /// first [`MAX_GRAM`] characters (then checked with [`NameQuery::needs_check`]).
    pub fn key_for(&self, kind: KeyKind) -> String {
        match self {
            NameQuery::Han(han) if kind != KeyKind::HanWhole => {
                han.chars().take(MAX_GRAM).collect()
            }
            NameQuery::Han(text) | NameQuery::Spelled(text) => text.clone(),
        }
    }

    /// The whole 汉字 text a match must contain when its key is only the query's start.
    pub fn needs_check(&self, kind: KeyKind) -> Option<&str> {
        match self {
            NameQuery::Han(han) if kind != KeyKind::HanWhole && han.chars().count() > MAX_GRAM => {
                Some(han)
            }
            _ => None,
        }
    }
}

/// Whether `c` is a 汉字 (CJK unified or compatibility ideograph, or 〇).
pub fn is_han(c: char) -> bool {
    matches!(u32::from(c),
        0x3007 | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x323AF)
}

/// The 汉字 of a text, in order, everything else dropped (王·芳 and 王 芳 are 王芳).
pub fn han_text(text: &str) -> String {
    text.chars().filter(|c| is_han(*c)).collect()
}

/// Letters only, lowercase a–z: accents and tone marks dropped (`Wáng Fāng` → `wangfang`,
/// `Zoë` → `zoe`), full-width letters narrowed, digits (tone numbers) and the rest dropped.
pub fn fold_letters(text: &str) -> String {
    text.nfkd().filter(char::is_ascii_alphabetic).map(|c| c.to_ascii_lowercase()).collect()
}

/// The name spelled out as syllables and words, once per combination of the readings of
/// its leading 多音字 (see [`SURNAME_CHARS`]; at most [`MAX_SPELLINGS`]). ü is spelled
/// both `u` and `v`, as people type it.
fn spellings(name: &str) -> Vec<Vec<String>> {
    let mut tokens: Vec<Vec<String>> = Vec::new();
    let mut word = String::new();
    let mut han_seen = 0;
    for c in name.chars() {
        if is_han(c) {
            push_word(&mut tokens, &mut word);
            if let Some(readings) = c.to_pinyin_multi() {
                han_seen += 1;
                let all = if han_seen <= SURNAME_CHARS { readings.count() } else { 1 };
                let mut spelled: Vec<String> = Vec::new();
                for reading in readings.into_iter().take(all) {
                    let plain = reading.plain();
                    for variant in [fold_letters(plain), plain.replace('ü', "v")] {
                        if !variant.is_empty() && !spelled.contains(&variant) {
                            spelled.push(variant);
                        }
                    }
                }
                if !spelled.is_empty() {
                    tokens.push(spelled);
                }
            }
        } else if c.is_alphanumeric() {
            word.push(c);
        } else {
            push_word(&mut tokens, &mut word);
        }
    }
    push_word(&mut tokens, &mut word);
    tokens.truncate(MAX_TOKENS);
    let mut spellings: Vec<Vec<String>> = vec![Vec::new()];
    for readings in tokens {
        let expand = readings.len() > 1 && spellings.len() * readings.len() <= MAX_SPELLINGS;
        if expand {
            spellings = spellings
                .iter()
                .flat_map(|start| {
                    readings.iter().map(move |reading| {
                        let mut next = start.clone();
                        next.push(reading.clone());
                        next
                    })
                })
                .collect();
        } else {
            for spelling in &mut spellings {
                spelling.push(readings[0].clone());
            }
        }
    }
    spellings.retain(|spelling| !spelling.is_empty());
    spellings
}

/// Ends a Latin word: folded to letters, kept if any are left.
fn push_word(tokens: &mut Vec<Vec<String>>, word: &mut String) {
    let folded = fold_letters(word);
    if !folded.is_empty() {
        tokens.push(vec![folded]);
    }
    word.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(keys: &[SearchKey], kind: KeyKind) -> Vec<&str> {
        keys.iter().filter(|k| k.kind == kind).map(|k| k.key.as_str()).collect()
    }

    #[test]
    fn every_han_substring_is_a_key_ranked_by_where_it_starts() {
        let keys = name_keys("王小芳");
        assert_eq!(of(&keys, KeyKind::HanWhole), ["王小芳"]);
        assert_eq!(of(&keys, KeyKind::HanStart), ["王", "王小"]);
        assert_eq!(of(&keys, KeyKind::HanInner), ["小", "小芳", "芳"]);
    }

    #[test]
    fn a_repeated_character_is_kept_once_at_its_best_kind() {
        let keys = name_keys("王王");
        assert_eq!(of(&keys, KeyKind::HanStart), ["王"]);
        assert!(of(&keys, KeyKind::HanInner).is_empty());
    }

    #[test]
    fn pinyin_is_toneless_without_spaces_and_from_every_syllable() {
        let keys = name_keys("王芳");
        assert!(of(&keys, KeyKind::SpellStart).contains(&"wangfang"));
        assert_eq!(of(&keys, KeyKind::SpellInner), ["fang"]);
        assert!(of(&keys, KeyKind::InitialsStart).contains(&"wf"));
        assert_eq!(of(&keys, KeyKind::InitialsInner), ["f"]);
    }

    #[test]
    fn heteronym_surnames_are_indexed_under_every_reading() {
        // 单 reads dān but is the surname Shàn; 曾 is zēng or céng.
        let keys = name_keys("单曾");
        let spelled = of(&keys, KeyKind::SpellStart);
        for expected in ["danzeng", "shanzeng", "danceng", "shanceng"] {
            assert!(spelled.contains(&expected), "{expected} in {spelled:?}");
        }
    }

    #[test]
    fn only_the_leading_characters_take_every_reading() {
        // 乐 is lè or yuè: as a surname both, in a given name its usual reading only.
        let surname = name_keys("乐乐乐");
        let spelled = of(&surname, KeyKind::SpellStart);
        assert!(spelled.len() >= 2 && spelled.len() <= MAX_SPELLINGS, "{spelled:?}");
        let given = of(&surname, KeyKind::SpellInner);
        assert!(given.len() <= 3, "{given:?}");
    }

    #[test]
    fn u_umlaut_is_spelled_both_ways() {
        let spelled = name_keys("吕布").into_iter().filter(|k| k.kind == KeyKind::SpellStart);
        let spelled: Vec<String> = spelled.map(|k| k.key).collect();
        assert!(spelled.contains(&"lubu".to_owned()) && spelled.contains(&"lvbu".to_owned()));
    }

    #[test]
    fn latin_names_fold_case_and_accents() {
        let keys = name_keys("Zoë  O'Brien-SMITH");
        assert_eq!(of(&keys, KeyKind::SpellStart), ["zoeobriensmith"]);
        assert!(of(&keys, KeyKind::SpellInner).contains(&"smith"));
        assert_eq!(of(&keys, KeyKind::InitialsStart), ["zobs"]);
    }

    #[test]
    fn queries_are_normalised_like_the_index() {
        assert_eq!(NameQuery::parse(" 王 芳 "), Some(NameQuery::Han("王芳".into())));
        for spelled in ["wangfang", "wang fang", "Wáng Fāng", "WANG2 FANG1", "ｗａｎｇ"] {
            let query = NameQuery::parse(spelled).unwrap();
            let NameQuery::Spelled(text) = query else { panic!("{spelled}") };
            assert!("wangfang".starts_with(&text), "{spelled} → {text}");
        }
        assert_eq!(NameQuery::parse("123 -"), None);
    }

    #[test]
    fn long_han_queries_are_looked_up_by_their_start_and_checked() {
        let query = NameQuery::parse("北京市海淀区某某科技有限公司").unwrap();
        assert_eq!(query.key_for(KeyKind::HanInner), "北京市海淀区某某");
        assert_eq!(query.key_for(KeyKind::HanWhole), "北京市海淀区某某科技有限公司");
        assert_eq!(query.needs_check(KeyKind::HanStart), Some("北京市海淀区某某科技有限公司"));
        assert_eq!(NameQuery::parse("王芳").unwrap().needs_check(KeyKind::HanStart), None);
    }

    #[test]
    fn long_names_are_bounded() {
        let name = "字".repeat(10_000);
        let keys = name_keys(&name);
        assert!(keys.len() < 100, "{}", keys.len());
        let latin = "ab ".repeat(5_000);
        assert!(name_keys(&latin).len() < 200);
    }

    #[test]
    fn kind_codes_round_trip_and_rank() {
        for kind in KeyKind::ALL {
            assert_eq!(KeyKind::from_code(kind.code()), Some(kind));
        }
        assert!(KeyKind::Phone.code() < KeyKind::HanWhole.code());
        assert!(KeyKind::SpellStart.code() < KeyKind::InitialsStart.code());
    }

    #[test]
    fn customer_keys_include_normalised_contacts() {
        let contacts = Contacts {
            phones: vec!["138-0013-8000".into()],
            emails: vec!["Wang@Example.CN".into()],
            address: Some("88 Huaihai Rd.".into()),
        };
        let keys = customer_keys(Some("王芳"), &contacts, PhoneRegion::default());
        assert_eq!(of(&keys, KeyKind::Phone), ["+8613800138000"]);
        assert_eq!(of(&keys, KeyKind::Email), ["wang@example.cn"]);
        assert_eq!(of(&keys, KeyKind::Address), ["88 huaihai rd"]);
        assert!(of(&keys, KeyKind::HanWhole) == ["王芳"]);
    }
}
