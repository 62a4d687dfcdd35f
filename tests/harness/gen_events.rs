//! The benchmark workload: realistic Workato-style audit events as NDJSON, byte for byte what the peers'
//! published generator (`gen_events.py N --seed S [--max-kb K]`, Python 3) prints for the same arguments,
//! so figures measured on it compare with the peers' (the README's performance section).
//!
//! The mix: 70% job details (2–12 step lines, each masked with probability 0.2), 10% failed jobs, 20%
//! activity-audit events. A job's size is log-normal (`exp(N(1.8, 1.3))` KB, median ~6 KB, capped at
//! `--max-kb`), spread over its unmasked lines' inputs and outputs as records of random text.
//!
//! Matching the bytes means matching Python exactly: [`PyRandom`] is CPython's `random.Random` (the
//! Mersenne Twister seeded by `init_by_array`, `random()`, `getrandbits`, `_randbelow`, `randint`,
//! `choice`, `normalvariate`, `lognormvariate`) and [`Json`] writes what `json.dumps` writes (`repr` of
//! floats, `ensure_ascii` strings, insertion-ordered keys). Every call draws from the generator in the
//! order the Python script evaluates it — dict literals left to right, a call's arguments before its body.
//! Sources: CPython's `Lib/random.py`, `Modules/_randommodule.c`, `Objects/floatobject.c` (`round`,
//! `repr`), `Python/pystrtod.c` (when `repr` switches to an exponent) and `Lib/json/encoder.py`.

use std::io::{self, Write};

/// Mersenne Twister constants (Matsumoto and Nishimura, 1998), as in CPython's `_randommodule.c`.
const MT_N: usize = 624;
const MT_M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// CPython's `random.Random`: the same seed gives the same sequence of every method used here.
pub struct PyRandom {
    state: [u32; MT_N],
    index: usize,
}

impl PyRandom {
    /// `random.Random(seed)` for an int seed: the key is `abs(seed)` in 32-bit words, least significant
    /// first (`[0]` for zero), fed to `init_by_array`.
    pub fn new(seed: &Seed) -> Self {
        let mut random = PyRandom { state: [0; MT_N], index: MT_N };
        random.init_by_array(&seed.words);
        random
    }

    fn init_genrand(&mut self, s: u32) {
        let mt = &mut self.state;
        mt[0] = s;
        for i in 1..MT_N {
            mt[i] = 1_812_433_253u32.wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_add(i as u32);
        }
        self.index = MT_N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let mt = &mut self.state;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..MT_N.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525)).wrapping_add(key[j]).wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= MT_N {
                mt[0] = mt[MT_N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..MT_N - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= MT_N {
                mt[0] = mt[MT_N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= MT_N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn twist(&mut self) {
        let mt = &mut self.state;
        let mag01 = |y: u32| if y & 1 == 0 { 0 } else { MATRIX_A };
        for k in 0..MT_N {
            let y = (mt[k] & UPPER_MASK) | (mt[(k + 1) % MT_N] & LOWER_MASK);
            mt[k] = mt[(k + MT_M) % MT_N] ^ (y >> 1) ^ mag01(y);
        }
        self.index = 0;
    }

    /// `random()`: 53 random bits from two outputs (27 and 26 bits), in [0, 1).
    pub fn random(&mut self) -> f64 {
        let a = self.next_u32() >> 5;
        let b = self.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `getrandbits(k)` for `k <= 64`: 32-bit words, least significant first, the last one shifted down
    /// to the bits still needed.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!(k <= 64, "getrandbits({k}): only up to 64 bits are needed here");
        if k == 0 {
            return 0;
        }
        if k <= 32 {
            return u64::from(self.next_u32() >> (32 - k));
        }
        let low = u64::from(self.next_u32());
        let high = u64::from(self.next_u32() >> (64 - k));
        (high << 32) | low
    }

    /// `_randbelow(n)`: `getrandbits(n.bit_length())` until it is below `n`.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        assert!(n > 0, "randbelow(0)");
        let k = u64::BITS - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `randint(a, b)`: `a + _randbelow(b - a + 1)`, both ends included.
    pub fn randint(&mut self, a: i64, b: i64) -> i64 {
        assert!(a <= b, "randint({a}, {b}): empty range");
        a + self.randbelow((b - a + 1) as u64) as i64
    }

    /// `choice(seq)`: `seq[_randbelow(len(seq))]`.
    pub fn choice<'a, T: ?Sized>(&mut self, seq: &[&'a T]) -> &'a T {
        seq[self.randbelow(seq.len() as u64) as usize]
    }

    /// `normalvariate(mu, sigma)`: Kinderman and Monahan's ratio-of-uniforms method, as CPython has it.
    pub fn normalvariate(&mut self, mu: f64, sigma: f64) -> f64 {
        loop {
            let u1 = self.random();
            let u2 = 1.0 - self.random();
            let z = NV_MAGICCONST * (u1 - 0.5) / u2;
            let zz = z * z / 4.0;
            if zz <= -u2.ln() {
                return mu + z * sigma;
            }
        }
    }

    /// `lognormvariate(mu, sigma)`: `exp(normalvariate(mu, sigma))`.
    pub fn lognormvariate(&mut self, mu: f64, sigma: f64) -> f64 {
        self.normalvariate(mu, sigma).exp()
    }
}

/// `random.NV_MAGICCONST`, `4 * exp(-0.5) / sqrt(2.0)`, as Python computes it (pinned by a test, so a
/// compiler folding the expression differently cannot change the sequence).
pub const NV_MAGICCONST: f64 = 1.715_527_769_921_413_5;

/// An int seed of any size, as `random.Random` takes it: `abs(seed)` in 32-bit words, least significant first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    words: Vec<u32>,
}

impl Seed {
    pub fn from_i64(seed: i64) -> Self {
        let magnitude = seed.unsigned_abs();
        let words = if magnitude >> 32 == 0 { vec![magnitude as u32] } else { vec![magnitude as u32, (magnitude >> 32) as u32] };
        Seed { words }
    }

    /// Parses a decimal int as Python's `int()` does (sign, digits, single underscores between digits).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
        if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
            return None;
        }
        let mut words: Vec<u32> = vec![0];
        for c in digits.chars().filter(|&c| c != '_') {
            let mut carry = u64::from(c.to_digit(10)?);
            for word in &mut words {
                let value = u64::from(*word) * 10 + carry;
                *word = value as u32;
                carry = value >> 32;
            }
            if carry > 0 {
                words.push(carry as u32);
            }
        }
        while words.len() > 1 && words.last() == Some(&0) {
            words.pop();
        }
        Some(Seed { words })
    }
}

/// A JSON value with keys in insertion order, as a Python dict keeps them.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(&'static str, Json)>),
}

/// `json.dumps` separators: the default (`", "`, `": "`) or compact (`","`, `":"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separators {
    Default,
    Compact,
}

impl Json {
    fn str(text: impl Into<String>) -> Json {
        Json::Str(text.into())
    }

    /// Appends `json.dumps(self, separators=...)` to `out`.
    pub fn write(&self, out: &mut Vec<u8>, separators: Separators) {
        let (item, key) = match separators {
            Separators::Default => (&b", "[..], &b": "[..]),
            Separators::Compact => (&b","[..], &b":"[..]),
        };
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(true) => out.extend_from_slice(b"true"),
            Json::Bool(false) => out.extend_from_slice(b"false"),
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Float(x) => write_float_repr(*x, out),
            Json::Str(s) => write_string(s, out),
            Json::Array(items) => {
                out.push(b'[');
                for (i, value) in items.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(item);
                    }
                    value.write(out, separators);
                }
                out.push(b']');
            }
            Json::Object(members) => {
                out.push(b'{');
                for (i, (name, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(item);
                    }
                    write_string(name, out);
                    out.extend_from_slice(key);
                    value.write(out, separators);
                }
                out.push(b'}');
            }
        }
    }
}

/// A string as `json.dumps` writes it with `ensure_ascii=True`: `"` and `\` escaped, the usual short
/// escapes, other control characters and everything beyond ASCII as `\uXXXX` (UTF-16 surrogate pairs).
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(c as u8),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push(b'"');
}

/// `repr(x)` of a float, as `json.dumps` writes it: the shortest digits that read back as `x`, in
/// positional form when the decimal point falls at position -3..=16 (`0.0001`, `1e+16`'s neighbour
/// `1000000000000000.0`), else `d.ddde±XX` (`1.5e-05`, `1e+16`); `.0` on integral values.
pub fn write_float_repr(x: f64, out: &mut Vec<u8>) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Python's `repr`: `d.ddde<exp>`.
    let shortest = format!("{:e}", x.abs());
    let (mantissa, exponent) = shortest.split_once('e').expect("{:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e}'s exponent is an integer");
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    // Python's `decpt`: the value is 0.<digits> × 10^decpt.
    let decpt = exponent + 1;
    if x.is_sign_negative() {
        out.push(b'-');
    }
    if decpt <= -4 || decpt > 16 {
        out.extend_from_slice(mantissa.as_bytes());
        let _ = write!(out, "e{}{:02}", if exponent < 0 { '-' } else { '+' }, exponent.unsigned_abs());
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', decpt.unsigned_abs() as usize));
        out.extend_from_slice(digits.as_bytes());
    } else {
        let decpt = decpt as usize;
        if decpt >= digits.len() {
            out.extend_from_slice(digits.as_bytes());
            out.extend(std::iter::repeat_n(b'0', decpt - digits.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits.as_bytes()[..decpt]);
            out.push(b'.');
            out.extend_from_slice(&digits.as_bytes()[decpt..]);
        }
    }
}

/// Python's `round(x, 2)`: the decimal correctly rounded to two places (ties to even, on the exact binary
/// value), read back as the nearest float. Rust's `{:.2}` rounds the same way.
pub fn py_round2(x: f64) -> f64 {
    format!("{x:.2}").parse().expect("a formatted float reads back")
}

/// `string.ascii_letters + string.digits`, the alphabet of the generator's random identifiers.
const ID_ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The workload's parameters: `N --seed S --max-kb K`.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Number of events (none when not positive, as `range(n)`).
    pub events: i64,
    pub seed: Seed,
    /// Cap on a job's size in KB.
    pub max_kb: f64,
}

impl Workload {
    /// The script's defaults: `--seed 1 --max-kb 1000`.
    pub fn new(events: i64) -> Self {
        Workload { events, seed: Seed::from_i64(1), max_kb: 1000.0 }
    }

    /// Writes the events, one compact JSON object per line.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut generator = Generator { r: PyRandom::new(&self.seed), scratch: Vec::new() };
        let mut line = Vec::new();
        for _ in 0..self.events.max(0) {
            let event = generator.event(self.max_kb);
            line.clear();
            event.write(&mut line, Separators::Compact);
            line.push(b'\n');
            out.write_all(&line)?;
        }
        Ok(())
    }
}

/// The script's functions, drawing from one `PyRandom` in the script's order.
struct Generator {
    r: PyRandom,
    /// Reused for `len(json.dumps(row))`.
    scratch: Vec<u8>,
}

impl Generator {
    /// `rid(r, n)`: n characters drawn from [`ID_ALPHABET`].
    fn rid(&mut self, n: usize) -> String {
        (0..n).map(|_| ID_ALPHABET[self.r.randbelow(ID_ALPHABET.len() as u64) as usize] as char).collect()
    }

    /// `payload(r, kb)`: records until their `json.dumps` (default separators) reach `kb` KB.
    fn payload(&mut self, kb: f64) -> Json {
        let mut rows = Vec::new();
        let mut size: u64 = 0;
        // `size < kb * 1024` compares an int with a float exactly; `size` stays far below 2^53.
        while (size as f64) < kb * 1024.0 {
            let id = self.r.randint(1, 1_000_000_000);
            let name = self.rid(12);
            let email = format!("{}@example.com", self.rid(6));
            let amount = py_round2(self.r.random() * 1000.0);
            let notes_len = self.r.randint(20, 200) as usize;
            let notes = self.rid(notes_len);
            let tag_count = self.r.randint(0, 5);
            let tags = (0..tag_count).map(|_| Json::Str(self.rid(5))).collect();
            let active = self.r.random() < 0.5;
            let row = Json::Object(vec![
                ("id", Json::Int(id)),
                ("name", Json::Str(name)),
                ("email", Json::Str(email)),
                ("amount", Json::Float(amount)),
                ("notes", Json::Str(notes)),
                ("tags", Json::Array(tags)),
                ("active", Json::Bool(active)),
            ]);
            self.scratch.clear();
            row.write(&mut self.scratch, Separators::Default);
            size += self.scratch.len() as u64;
            rows.push(row);
        }
        let count = rows.len() as i64;
        Json::Object(vec![("records", Json::Array(rows)), ("count", Json::Int(count))])
    }

    /// `line(r, n, kb, masked)`: one step line of a job.
    fn line(&mut self, number: i64, kb: f64, masked: bool) -> Json {
        let adapter_name = self.r.choice(&["salesforce", "netsuite", "http", "logger", "clock"]);
        let adapter_operation = self.r.choice(&["search_records", "create_record", "get", "log_message"]);
        let masked_value = || Json::Object(vec![("data", Json::str("masked"))]);
        let input = if masked { masked_value() } else { self.payload(kb / 2.0) };
        let output = if masked { masked_value() } else { self.payload(kb / 2.0) };
        let total = self.r.random();
        let execute = Json::Object(vec![
            ("name", Json::str("execute")),
            ("count", Json::Int(1)),
            ("average", Json::Float(0.01)),
            ("total", Json::Float(0.01)),
            ("min", Json::Float(0.01)),
            ("max", Json::Float(0.01)),
        ]);
        Json::Object(vec![
            ("recipe_line_number", Json::Int(number)),
            ("adapter_name", Json::str(adapter_name)),
            ("adapter_operation", Json::str(adapter_operation)),
            ("input", input),
            ("output", output),
            ("error", Json::Null),
            ("mask_data", Json::Bool(masked)),
            ("line_stat", Json::Object(vec![("total", Json::Float(total)), ("details", Json::Array(vec![execute]))])),
        ])
    }

    /// `job(r, i, failed, max_kb)`: a job-details event.
    fn job(&mut self, failed: bool, max_kb: f64) -> Json {
        let drawn = self.r.lognormvariate(1.8, 1.3);
        // `min(max_kb, drawn)` keeps its first argument unless the second is smaller.
        let kb = if drawn < max_kb { drawn } else { max_kb };
        let nlines = self.r.randint(2, 12);
        let uid = self.r.randint(1000, 99999);
        let recipe = self.r.randint(1_000_000, 10_000_000);
        let jid = format!("j-{}-{}", self.rid(8), self.rid(6));
        let (day, hour, minute, second) = (self.r.randint(1, 28), self.r.randint(0, 23), self.r.randint(0, 59), self.r.randint(0, 59));
        let ts = format!("2026-11-{day:02}T{hour:02}:{minute:02}:{second:02}-07:00");
        let title = format!("New record in {}", self.rid(10));
        let error = if failed { Json::str(r#"{"adapter": "http", "message": "boom", "input": "<redacted>"}"#) } else { Json::Null };
        let context = Json::Object(vec![
            ("user_id", Json::Int(uid)),
            ("user_name", Json::str("ops")),
            ("user_email", Json::str("ops@example.com")),
            ("recipe_id", Json::Int(recipe)),
            ("recipe_url", Json::Str(format!("https://app.workato.com/recipes/{recipe}"))),
            ("recipe_name", Json::str("Sync")),
            ("recipe_path", Json::str("Home/Sync")),
            ("job_id", Json::str(&jid)),
            ("master_job_id", Json::str(&jid)),
        ]);
        let lines = (0..nlines)
            .map(|n| {
                // The call's arguments first: the line's size share, then whether it is masked.
                let masked = self.r.random() < 0.2;
                self.line(n, kb / nlines as f64, masked)
            })
            .collect();
        Json::Object(vec![
            ("id", Json::str(&jid)),
            ("master_job_id", Json::str(&jid)),
            ("recipe_id", Json::Int(recipe)),
            ("calling_job_id", Json::Null),
            ("calling_recipe_id", Json::Null),
            ("title", Json::Str(title)),
            ("status", Json::str(if failed { "failed" } else { "succeeded" })),
            ("is_repeat", Json::Bool(false)),
            ("is_test", Json::Bool(false)),
            ("started_at", Json::str(&ts)),
            ("completed_at", Json::Str(ts)),
            ("repeat_count", Json::Int(0)),
            ("action_count", Json::Int(nlines - 1)),
            ("parent_id", Json::Null),
            ("flow_id", Json::Int(recipe)),
            ("error_type", if failed { Json::str("Exception") } else { Json::Null }),
            ("is_poll_error", Json::Bool(false)),
            ("account_id", Json::Int(uid)),
            ("account_name", Json::str("Acme")),
            ("environment_type", Json::str("prod")),
            ("environment_id", Json::Int(uid)),
            ("error", error),
            ("context", context),
            ("lines", Json::Array(lines)),
        ])
    }

    /// `activity(r, i)`: an activity-audit event.
    fn activity(&mut self) -> Json {
        let uid = self.r.randint(1000, 99999);
        let id = self.r.randint(100_000_000, 1_000_000_000);
        let event_type = self.r.choice(&["user_login", "recipe_started", "recipe_stopped", "connection_updated", "user_logout"]);
        Json::Object(vec![
            ("id", Json::Int(id)),
            ("event_type", Json::str(event_type)),
            ("timestamp", Json::str("2026-11-20T10:15:30.000Z")),
            (
                "workspace",
                Json::Object(vec![
                    ("id", Json::Int(uid)),
                    ("name", Json::str("Acme")),
                    ("email", Json::str("admin@acme.example")),
                    ("environment", Json::str("prod")),
                ]),
            ),
            ("user", Json::Object(vec![("id", Json::Int(uid)), ("name", Json::str("Jane")), ("email", Json::str("jane@acme.example"))])),
            (
                "details",
                Json::Object(vec![
                    ("activity", Json::str("password_login")),
                    ("request", Json::Object(vec![("ip_address", Json::str("203.0.113.10")), ("user_agent", Json::str("Mozilla/5.0"))])),
                ]),
            ),
            ("resource", Json::Object(vec![("id", Json::Int(uid)), ("name", Json::str("Jane")), ("type", Json::str("User"))])),
        ])
    }

    /// One event of the mix: 70% job, 10% failed job, 20% activity.
    fn event(&mut self, max_kb: f64) -> Json {
        let x = self.r.random();
        if x < 0.7 {
            self.job(false, max_kb)
        } else if x < 0.8 {
            self.job(true, max_kb)
        } else {
            self.activity()
        }
    }
}
