//! kro's resource pluralisation: a port of gobuffalo/flect v1.0.3's `Pluralize` (kro.md §3),
//! with flect's word table, suffix rules and acronym handling, quirks included.

use std::collections::HashMap;
use std::sync::LazyLock;

/// One entry of flect's word table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Word {
    singular: &'static str,
    plural: &'static str,
    alternative: &'static str,
    unidirectional: bool,
    uncountable: bool,
    exact: bool,
}

impl Word {
    fn plural(&self) -> &'static str {
        if self.uncountable && self.plural.is_empty() {
            self.singular
        } else {
            self.plural
        }
    }
}

/// Acronyms flect recognises (only all-uppercase entries can ever match its lookup).
const ACRONYMS: &[&str] = &[
    "OK", "UTF8", "HTML", "JSON", "JWT", "ID", "UUID", "SQL", "ACK", "ACL", "ADSL", "AES", "ANSI",
    "API", "ARP", "ATM", "BGP", "BSS", "CCITT", "CHAP", "CIDR", "CIR", "CLI", "CPE", "CPU", "CRC",
    "CRT", "CSMA", "CMOS", "DCE", "DEC", "DES", "DHCP", "DNS", "DRAM", "DSL", "DSLAM", "DTE",
    "DMI", "EHA", "EIA", "EIGRP", "EOF", "ESS", "FCC", "FCS", "FDDI", "FTP", "GBIC", "GEPOF",
    "HDLC", "HTTP", "HTTPS", "IANA", "ICMP", "IDF", "IDS", "IEEE", "IETF", "IMAP", "IP", "IPS",
    "ISDN", "ISP", "LACP", "LAN", "LAPB", "LAPF", "LLC", "MAC", "MC", "MDF", "MIB", "MPLS", "MTU",
    "NAC", "NAT", "NBMA", "NIC", "NRZ", "NRZI", "NVRAM", "OSI", "OSPF", "OUI", "PAP", "PAT", "PC",
    "PIM", "PCM", "PDU", "POP3", "POTS", "PPP", "PPTP", "PTT", "PVST", "RAM", "RARP", "RFC", "RIP",
    "RLL", "ROM", "RSTP", "RTP", "RCP", "SDLC", "SFD", "SFP", "SLARP", "SLIP", "SMTP", "SNA",
    "SNAP", "SNMP", "SOF", "SRAM", "SSH", "SSID", "STP", "SYN", "TDM", "TFTP", "TIA", "TOFU",
    "UDP", "URL", "URI", "USB", "UTP", "VC", "VLAN", "VLSM", "VPN", "W3C", "WAN", "WEP", "WPA",
    "WWW",
];

fn is_acronym(s: &str) -> bool {
    ACRONYMS.contains(&s.to_uppercase().as_str())
}

const SPACES: &[char] = &['_', ' ', ':', '-', '/'];

/// Go's `unicode.IsPunct` for ASCII.
fn is_punct(c: char) -> bool {
    "!\"#%&'()*,-./:;?@[\\]_{}".contains(c)
}

fn push_part(parts: &mut Vec<String>, text: &str) {
    let mut s = text.trim();
    for space in SPACES {
        s = s.trim_matches(*space);
    }
    if s.is_empty() {
        return;
    }
    parts.push(if is_acronym(s) {
        s.to_uppercase()
    } else {
        s.to_string()
    });
}

/// flect's `toParts`.
fn to_parts(s: &str) -> Vec<String> {
    let s = s.trim();
    let mut parts = Vec::new();
    if s.is_empty() {
        return parts;
    }
    if is_acronym(s) {
        return vec![s.to_uppercase()];
    }
    let mut prev: Option<char> = None;
    let mut current = String::new();
    for c in s.chars() {
        let prev_upper = prev.is_some_and(char::is_uppercase);
        if SPACES.contains(&c)
            || c.is_whitespace()
            || (c.is_uppercase() && !prev_upper)
            || (c.is_uppercase() && is_acronym(&current))
        {
            push_part(&mut parts, &current);
            current.clear();
            current.push(c);
            prev = Some(c);
            continue;
        }
        if c.is_alphanumeric() || is_punct(c) || c == '`' {
            current.push(c);
            prev = Some(c);
            continue;
        }
        push_part(&mut parts, &current);
        current.clear();
        prev = Some(c);
    }
    push_part(&mut parts, &current);
    parts
}

/// A plural rule: a suffix and its replacement (`None` keeps the word as it is).
struct Rule {
    suffix: &'static str,
    replacement: Option<(&'static str, &'static str)>,
}

struct Tables {
    single_to_plural: HashMap<&'static str, &'static str>,
    plural_to_single: HashMap<&'static str, &'static str>,
    rules: Vec<Rule>,
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let mut single_to_plural = HashMap::new();
    let mut plural_to_single = HashMap::new();
    for word in DICTIONARY {
        single_to_plural.insert(word.singular, word.plural());
        if !word.unidirectional {
            plural_to_single.insert(word.plural(), word.singular);
            if !word.alternative.is_empty() {
                plural_to_single.insert(word.alternative, word.singular);
            }
        }
    }
    // Priority: dictionary words (non-exact) last-to-first, then the suffix table in order; each
    // as "keep the plural" before "singular suffix → plural suffix".
    let mut rules = Vec::new();
    let dictionary = DICTIONARY
        .iter()
        .rev()
        .filter(|w| !w.exact)
        .map(|w| (w.singular, w.plural()));
    for (singular, plural) in dictionary.chain(SUFFIXES.iter().copied()) {
        rules.push(Rule {
            suffix: plural,
            replacement: None,
        });
        rules.push(Rule {
            suffix: singular,
            replacement: Some((singular, plural)),
        });
    }
    Tables {
        single_to_plural,
        plural_to_single,
        rules,
    }
});

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `strings.TrimSuffix(original, suffix) + replacement`.
fn replace_suffix(original: &str, suffix: &str, replacement: &str) -> String {
    format!(
        "{}{replacement}",
        original.strip_suffix(suffix).unwrap_or(original)
    )
}

/// flect's `Pluralize`.
pub fn pluralize(s: &str) -> String {
    let parts = to_parts(s);
    let Some(last) = parts.last() else {
        return String::new();
    };
    let tables = &*TABLES;
    if let Some(plural) = tables.single_to_plural.get(s) {
        return replace_suffix(s, s, plural);
    }
    if tables.plural_to_single.contains_key(s) {
        return s.to_string();
    }
    let lower = last.to_lowercase();
    if tables.plural_to_single.contains_key(lower.as_str()) {
        return s.to_string();
    }
    if let Some(plural) = tables.single_to_plural.get(lower.as_str()) {
        let plural = if *last == capitalize(last) {
            capitalize(plural)
        } else {
            plural.to_string()
        };
        return replace_suffix(s, last, &plural);
    }
    for rule in &tables.rules {
        if last.ends_with(rule.suffix) {
            let replaced = match rule.replacement {
                None => last.clone(),
                Some((singular, plural)) => replace_suffix(last, singular, plural),
            };
            return replace_suffix(s, last, &replaced);
        }
    }
    if lower.ends_with('s') {
        return s.to_string();
    }
    format!("{s}s")
}

/// The word table: (singular, plural, alternative plural, flags).
pub(crate) const DICTIONARY: &[Word] = &[
    Word {
        singular: "aircraft",
        plural: "aircraft",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "beef",
        plural: "beef",
        alternative: "beefs",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "bison",
        plural: "bison",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "blues",
        plural: "blues",
        alternative: "",
        unidirectional: true,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "chassis",
        plural: "chassis",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "deer",
        plural: "deer",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "fish",
        plural: "fish",
        alternative: "fishes",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "moose",
        plural: "moose",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "police",
        plural: "police",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "salmon",
        plural: "salmon",
        alternative: "salmons",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "series",
        plural: "series",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "sheep",
        plural: "sheep",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "shrimp",
        plural: "shrimp",
        alternative: "shrimps",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "species",
        plural: "species",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "swine",
        plural: "swine",
        alternative: "swines",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "trout",
        plural: "trout",
        alternative: "trouts",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "tuna",
        plural: "tuna",
        alternative: "tunas",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "you",
        plural: "you",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "child",
        plural: "children",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "ox",
        plural: "oxen",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: true,
    },
    Word {
        singular: "foot",
        plural: "feet",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "goose",
        plural: "geese",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "man",
        plural: "men",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "human",
        plural: "humans",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "louse",
        plural: "lice",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: true,
    },
    Word {
        singular: "mouse",
        plural: "mice",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "tooth",
        plural: "teeth",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "woman",
        plural: "women",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "die",
        plural: "dice",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: true,
    },
    Word {
        singular: "person",
        plural: "people",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "adieu",
        plural: "adieux",
        alternative: "adieus",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "fabliau",
        plural: "fabliaux",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "bureau",
        plural: "bureaus",
        alternative: "bureaux",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "criterion",
        plural: "criteria",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "ganglion",
        plural: "ganglia",
        alternative: "ganglions",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "lexicon",
        plural: "lexica",
        alternative: "lexicons",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "mitochondrion",
        plural: "mitochondria",
        alternative: "mitochondrions",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "noumenon",
        plural: "noumena",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "phenomenon",
        plural: "phenomena",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "taxon",
        plural: "taxa",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "media",
        plural: "media",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "medium",
        plural: "media",
        alternative: "mediums",
        unidirectional: true,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "stadium",
        plural: "stadiums",
        alternative: "stadia",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "aquarium",
        plural: "aquaria",
        alternative: "aquariums",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "auditorium",
        plural: "auditoria",
        alternative: "auditoriums",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "symposium",
        plural: "symposia",
        alternative: "symposiums",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "curriculum",
        plural: "curriculums",
        alternative: "curricula",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "quota",
        plural: "quotas",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "alumnus",
        plural: "alumni",
        alternative: "alumnuses",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "bacillus",
        plural: "bacilli",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "cactus",
        plural: "cacti",
        alternative: "cactuses",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "coccus",
        plural: "cocci",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "focus",
        plural: "foci",
        alternative: "focuses",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "locus",
        plural: "loci",
        alternative: "locuses",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "nucleus",
        plural: "nuclei",
        alternative: "nucleuses",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "octopus",
        plural: "octupuses",
        alternative: "octopi",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "radius",
        plural: "radii",
        alternative: "radiuses",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "syllabus",
        plural: "syllabi",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "corpus",
        plural: "corpora",
        alternative: "corpuses",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "genus",
        plural: "genera",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "alumna",
        plural: "alumnae",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "vertebra",
        plural: "vertebrae",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "differentia",
        plural: "differentiae",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "minutia",
        plural: "minutiae",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "vita",
        plural: "vitae",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "larva",
        plural: "larvae",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "postcava",
        plural: "postcavae",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "praecava",
        plural: "praecavae",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "uva",
        plural: "uvae",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "apex",
        plural: "apices",
        alternative: "apexes",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "codex",
        plural: "codices",
        alternative: "codexes",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "index",
        plural: "indices",
        alternative: "indexes",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "latex",
        plural: "latices",
        alternative: "latexes",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "vertex",
        plural: "vertices",
        alternative: "vertexes",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "vortex",
        plural: "vortices",
        alternative: "vortexes",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "appendix",
        plural: "appendices",
        alternative: "appendixes",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "radix",
        plural: "radices",
        alternative: "radixes",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "helix",
        plural: "helices",
        alternative: "helixes",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "axis",
        plural: "axes",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: true,
    },
    Word {
        singular: "crisis",
        plural: "crises",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "ellipsis",
        plural: "ellipses",
        alternative: "",
        unidirectional: true,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "genesis",
        plural: "geneses",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "oasis",
        plural: "oases",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "thesis",
        plural: "theses",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "testis",
        plural: "testes",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "base",
        plural: "bases",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "basis",
        plural: "bases",
        alternative: "",
        unidirectional: true,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "alias",
        plural: "aliases",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: true,
    },
    Word {
        singular: "vedalia",
        plural: "vedalias",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "use",
        plural: "uses",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: true,
    },
    Word {
        singular: "abuse",
        plural: "abuses",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "cause",
        plural: "causes",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "clause",
        plural: "clauses",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "cruse",
        plural: "cruses",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "excuse",
        plural: "excuses",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "fuse",
        plural: "fuses",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "house",
        plural: "houses",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "misuse",
        plural: "misuses",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "muse",
        plural: "muses",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "pause",
        plural: "pauses",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "ache",
        plural: "aches",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "topaz",
        plural: "topazes",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "buffalo",
        plural: "buffaloes",
        alternative: "buffalos",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "potato",
        plural: "potatoes",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "tomato",
        plural: "tomatoes",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "equipment",
        plural: "",
        alternative: "",
        unidirectional: false,
        uncountable: true,
        exact: false,
    },
    Word {
        singular: "information",
        plural: "",
        alternative: "",
        unidirectional: false,
        uncountable: true,
        exact: false,
    },
    Word {
        singular: "jeans",
        plural: "",
        alternative: "",
        unidirectional: false,
        uncountable: true,
        exact: false,
    },
    Word {
        singular: "money",
        plural: "",
        alternative: "",
        unidirectional: false,
        uncountable: true,
        exact: false,
    },
    Word {
        singular: "news",
        plural: "",
        alternative: "",
        unidirectional: false,
        uncountable: true,
        exact: false,
    },
    Word {
        singular: "rice",
        plural: "",
        alternative: "",
        unidirectional: false,
        uncountable: true,
        exact: false,
    },
    Word {
        singular: "dwarf",
        plural: "dwarfs",
        alternative: "dwarves",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "hoof",
        plural: "hoofs",
        alternative: "hooves",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "thief",
        plural: "thieves",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "chive",
        plural: "chives",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "hive",
        plural: "hives",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "move",
        plural: "moves",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "movie",
        plural: "movies",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "cookie",
        plural: "cookies",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "pretorium",
        plural: "pretoriums",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "agenda",
        plural: "agendas",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "formula",
        plural: "formulas",
        alternative: "formulae",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "shoe",
        plural: "shoes",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "toe",
        plural: "toes",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: true,
    },
    Word {
        singular: "graffiti",
        plural: "graffiti",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: false,
    },
    Word {
        singular: "ID",
        plural: "IDs",
        alternative: "",
        unidirectional: false,
        uncountable: false,
        exact: true,
    },
];

/// Suffix rules, highest priority first: (singular suffix, plural suffix).
pub(crate) const SUFFIXES: &[(&str, &str)] = &[
    ("tive", "tives"),
    ("eaf", "eaves"),
    ("oaf", "oaves"),
    ("afe", "aves"),
    ("arf", "arves"),
    ("rfe", "rves"),
    ("rf", "rves"),
    ("lf", "lves"),
    ("fe", "ves"),
    ("ay", "ays"),
    ("ey", "eys"),
    ("oy", "oys"),
    ("quy", "quies"),
    ("uy", "uys"),
    ("y", "ies"),
    ("eau", "eaux"),
    ("bula", "bulae"),
    ("dula", "bulae"),
    ("lula", "bulae"),
    ("nula", "bulae"),
    ("vula", "bulae"),
    ("hedron", "hedra"),
    ("ium", "ia"),
    ("seum", "seums"),
    ("eum", "ea"),
    ("oum", "oa"),
    ("stracum", "straca"),
    ("dum", "da"),
    ("elum", "ela"),
    ("ilum", "ila"),
    ("olum", "ola"),
    ("ulum", "ula"),
    ("llum", "lla"),
    ("ylum", "yla"),
    ("imum", "ima"),
    ("ernum", "erna"),
    ("gnum", "gna"),
    ("brum", "bra"),
    ("crum", "cra"),
    ("terum", "tera"),
    ("serum", "sera"),
    ("trum", "tra"),
    ("antum", "anta"),
    ("atum", "ata"),
    ("entum", "enta"),
    ("etum", "eta"),
    ("itum", "ita"),
    ("otum", "ota"),
    ("utum", "uta"),
    ("ctum", "cta"),
    ("ovum", "ova"),
    ("trix", "trices"),
    ("iasis", "iases"),
    ("mesis", "meses"),
    ("kinesis", "kineses"),
    ("resis", "reses"),
    ("gnosis", "gnoses"),
    ("opsis", "opses"),
    ("ysis", "yses"),
    ("ouse", "ouses"),
    ("lause", "lauses"),
    ("us", "uses"),
    ("ch", "ches"),
    ("io", "ios"),
    ("sh", "shes"),
    ("ss", "sses"),
    ("ez", "ezzes"),
    ("iz", "izzes"),
    ("tz", "tzes"),
    ("zz", "zzes"),
    ("ano", "anos"),
    ("lo", "los"),
    ("to", "tos"),
    ("oo", "oos"),
    ("o", "oes"),
    ("x", "xes"),
    ("S", "Ses"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// kro.md §3 golden table ([KRO-PL]).
    #[test]
    fn golden_plurals() {
        let cases = [
            ("democontrolplane", "democontrolplanes"),
            ("kany8scontrolplane", "kany8scontrolplanes"),
            ("webapplication", "webapplications"),
            ("policy", "policies"),
            ("proxy", "proxies"),
            ("gateway", "gateways"),
            ("key", "keys"),
            ("ingress", "ingresses"),
            ("class", "classes"),
            ("address", "addresses"),
            ("status", "statuses"),
            ("bus", "buses"),
            ("campus", "campuses"),
            ("cpus", "cpuses"),
            ("box", "boxes"),
            ("nginx", "nginxes"),
            ("mesh", "meshes"),
            ("match", "matches"),
            ("repo", "repoes"),
            ("demo", "demoes"),
            ("video", "videoes"),
            ("hero", "heroes"),
            ("photo", "photos"),
            ("studio", "studios"),
            ("auto", "autos"),
            ("index", "indices"),
            ("vectorindex", "vectorindices"),
            ("vertex", "vertices"),
            ("matrix", "matrices"),
            ("analysis", "analyses"),
            ("crisis", "crises"),
            ("axis", "axes"),
            ("person", "people"),
            ("child", "children"),
            ("alias", "aliases"),
            ("base", "bases"),
            ("area", "area"),
            ("idea", "idea"),
            ("lambda", "lambda"),
            ("metadata", "metadata"),
            ("beta", "beta"),
            ("data", "data"),
            ("schema", "schemas"),
            ("quota", "quotas"),
            ("kafka", "kafkas"),
            ("kany8s", "kany8s"),
            ("eks", "eks"),
            ("redis", "redis"),
            ("postgres", "postgres"),
            ("aws", "aws"),
            ("gas", "gas"),
            ("wolf", "wolves"),
            ("leaf", "leaves"),
            ("knife", "knives"),
            ("safe", "saves"),
            ("archive", "archives"),
            ("directive", "directives"),
            ("money", "money"),
            ("news", "news"),
            ("series", "series"),
            ("sheep", "sheep"),
            ("api", "apis"),
            ("ip", "ips"),
            ("vpn", "vpns"),
            ("id", "ids"),
            ("dns", "dnsDNSes"),
        ];
        for (kind, plural) in cases {
            assert_eq!(pluralize(kind), plural, "{kind}");
        }
    }
}
