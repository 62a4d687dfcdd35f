//! Generated audit events (jobs, activities and other events) with markers planted in everything
//! masking must remove.
//!
//! An [`EventSpec`] describes an event as the masking rules see it: top-level `lines` (any number
//! of occurrences), job-level `error` occurrences in every shape, and other fields. Rendering it
//! ([`EventSpec::render`]) writes the JSON text — keys spelled plainly or with `\u` escapes,
//! whitespace wherever JSON allows it, duplicate keys where the spec has them — and returns with it
//! what the oracle needs to know: which markers are secret and which values must be kept.
//!
//! - A secret marker (`SECRETM00001`, always written literally) is planted in every `input` and
//!   `output` value of a line that masks, in every `input` of an `error` document (the job's, and
//!   a masked line's own), and anywhere in such an `error` that is an array. No byte of it may
//!   leave.
//! - A control value is the exact JSON text of something that must be kept byte-for-byte: the
//!   `input`/`output`/`error` of a line that does not mask, the metadata of every line, other
//!   top-level fields. It holds `CONTROLK00001`-style markers so that it cannot be found by accident.
//!
//! The spec derives [`arbitrary::Arbitrary`], so that the same generator serves the property tests
//! (random bytes from proptest) and the coverage-guided fuzzer (bytes from libFuzzer).

use arbitrary::Arbitrary;

/// The prefix of every secret marker: no output byte sequence may contain it.
pub const SECRET_PREFIX: &str = "SECRETM";
/// The prefix of the markers in values that must be kept.
pub const CONTROL_PREFIX: &str = "CONTROLK";

/// Values nest at most this deep inside a field (the event and `lines` add three levels), far
/// below the scanners' limit of 128, so that every generated event is one they accept.
const MAX_VALUE_DEPTH: usize = 6;

/// An audit event, as the masking rules see it.
#[derive(Debug, Clone, Arbitrary)]
pub struct EventSpec {
    /// Top-level fields, in order; the job's identity fields go at `identity_at` among them. The
    /// first `lines` and `error` are always there (so that most events exercise the rules);
    /// `fields` may add more of each.
    pub lines: LinesSpec,
    pub error: ErrorSpec,
    #[arbitrary(with = up_to::<6, TopField>)]
    pub fields: Vec<TopField>,
    pub identity_at: u8,
    /// The layout between tokens, taken in turn (cycling).
    pub spacing: Vec<Spacing>,
    /// How keys are spelled, taken in turn (cycling).
    pub spellings: Vec<Spelling>,
    /// Which family the identity fields make it: masking acts on `lines` and `error` whatever
    /// the event is.
    pub kind: Kind,
}

/// The family of a generated event, given by its identity fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Kind {
    /// `id`, `recipe_id`, `status`, `completed_at`, `context.user_id`.
    Job,
    /// Today's activity shape: `id`, `event_type`, `workspace.id`, `timestamp`.
    Activity,
    /// Neither: an API-platform-style request log (`request_id`, `workspace_id`, `timestamp`).
    Other,
}

#[derive(Debug, Clone, Arbitrary)]
pub enum TopField {
    Lines(LinesSpec),
    Error(ErrorSpec),
    /// Any other field, kept as it is.
    Other(OtherName, Value),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum OtherName {
    Context,
    Note,
    /// `Lines`: not `lines` (keys are case-sensitive), so it is kept.
    CapitalLines,
    Inputs,
}

impl OtherName {
    fn as_str(self) -> &'static str {
        match self {
            OtherName::Context => "context_extra",
            OtherName::Note => "note",
            OtherName::CapitalLines => "Lines",
            OtherName::Inputs => "inputs",
        }
    }
}

/// One occurrence of the top-level `lines`.
#[derive(Debug, Clone, Arbitrary)]
pub enum LinesSpec {
    Steps(#[arbitrary(with = up_to::<5, LineSpec>)] Vec<LineSpec>),
    Null,
    /// An upstream size placeholder: a string.
    Text,
    /// Step lines serialized into a string: nothing in it can be masked line by line, so the
    /// markers of its masking lines are secret.
    SerializedSteps(#[arbitrary(with = up_to::<3, LineSpec>)] Vec<LineSpec>),
}

/// One step line: its fields in order, duplicates allowed.
#[derive(Debug, Clone, Arbitrary)]
pub struct LineSpec {
    #[arbitrary(with = up_to::<7, LineField>)]
    pub fields: Vec<LineField>,
}

impl LineSpec {
    /// The rule: a line masks unless every `mask_data` in it says no.
    pub fn masks(&self) -> bool {
        self.fields.iter().any(|f| matches!(f, LineField::MaskData(MaskData::Masks(_))))
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub enum LineField {
    MaskData(MaskData),
    Input(Value),
    Output(Value),
    /// Step metadata, kept whether or not the line masks.
    Meta(MetaName, Value),
    /// The step's own `error`: read as the job-level one in a masked line, kept in another.
    Error(ErrorSpec),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum MetaName {
    RecipeLineNumber,
    AdapterName,
    LineStat,
}

impl MetaName {
    fn as_str(self) -> &'static str {
        match self {
            MetaName::RecipeLineNumber => "recipe_line_number",
            MetaName::AdapterName => "adapter_name",
            MetaName::LineStat => "line_stat",
        }
    }
}

/// One `mask_data` occurrence.
#[derive(Debug, Clone, Arbitrary)]
pub enum MaskData {
    Masks(Masking),
    Keeps(NotMasking),
}

/// The values that mask: everything but the few that plainly say no.
#[derive(Debug, Clone, Arbitrary)]
pub enum Masking {
    True,
    /// `"true"` in the case the bits choose (`"TRUE"`, `"tRuE"`…).
    TrueString(u8),
    One,
    OneString,
    Number(NonZero),
    EmptyObject,
    Object(Value),
    Array(Vec<Value>),
    /// Strings that are not `"false"`: `""`, `"yes"`, `" false"`, `"no"`, `"0"`.
    OtherString(u8),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum NonZero {
    MinusOne,
    Two,
    Half,
    Tiny,
    Big,
}

/// The values that leave a line unmasked (when every occurrence is one of them).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum NotMasking {
    Null,
    False,
    Zero,
    /// `"false"` in the case the bits choose.
    FalseString(u8),
    /// `"f\u0061lse"`: the string `false` once decoded.
    FalseStringEscaped,
}

/// One occurrence of the job-level `error`.
#[derive(Debug, Clone, Arbitrary)]
pub enum ErrorSpec {
    Null,
    /// A message that is not JSON and holds no input.
    Message,
    /// The documented form: a strict JSON object inside a string.
    JsonString(#[arbitrary(with = up_to::<4, ErrorField>)] Vec<ErrorField>),
    /// The same document as an object instead of a string.
    Object(#[arbitrary(with = up_to::<4, ErrorField>)] Vec<ErrorField>),
    /// An array: replaced whole, so every marker in it is secret.
    Array(Vec<Value>),
    /// A string holding an input that is not a strict JSON object.
    LooseString(Loose, #[arbitrary(with = up_to::<4, ErrorField>)] Vec<ErrorField>),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Loose {
    TrailingText,
    NotANumber,
    Truncated,
    ArrayOfObject,
    SingleQuotes,
    Prefixed,
    Doubled,
}

#[derive(Debug, Clone, Arbitrary)]
pub enum ErrorField {
    Input(Value),
    Message,
    ErrorId,
}

/// A JSON value; every string in it carries a marker.
#[derive(Debug, Clone, Arbitrary)]
pub enum Value {
    Text(TextStyle),
    Number(i32),
    Bool(bool),
    Null,
    Array(Vec<Value>),
    Object(Vec<(ValueKey, Value)>),
}

/// A key inside a value. Keys named like the ones masking acts on do not count inside a value:
/// only a line's own `mask_data`, `input` and `output` do.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum ValueKey {
    /// A key that is itself a marker.
    Marker,
    Input,
    MaskData,
    Lines,
    Data,
}

/// What surrounds a marker inside a string.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum TextStyle {
    Plain,
    Quotes,
    Newline,
    Unicode,
    EscapedUnicode,
    Long,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Spacing {
    None,
    Space,
    Newline,
    Tab,
    CrLfIndent,
}

/// How a key is written: plainly, or with some of its characters as `\u` escapes.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Spelling {
    Plain,
    /// The character at this index (modulo the length) as `\u00XX`.
    EscapeOne(u8),
    EscapeOneUpper(u8),
    EscapeAll,
}

/// Up to `N` items, the count drawn evenly (a derived `Vec` is most often empty or of one item).
fn up_to<'a, const N: usize, T: Arbitrary<'a>>(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Vec<T>> {
    let n = u.int_in_range(0..=N)?;
    (0..n).map(|_| T::arbitrary(u)).collect()
}

/// A rendered event and what the oracle checks against it.
#[derive(Debug, Clone)]
pub struct Planted {
    pub body: String,
    /// How many secret markers the body holds (all start with [`SECRET_PREFIX`]).
    pub secrets: usize,
    /// Values that must reach the output byte-for-byte.
    pub controls: Vec<Control>,
    /// True when the event has at least one `lines` array (so the lines modes differ).
    pub has_steps: bool,
    /// The shapes this event exercised (for the generator's own coverage check).
    pub shapes: Vec<&'static str>,
    /// The family of the event: only a job has a summary-only stream that drops its lines.
    pub kind: Kind,
}

/// A JSON text that must appear verbatim in the output.
#[derive(Debug, Clone)]
pub struct Control {
    pub text: String,
    /// True for a value inside `lines`: only kept where the lines are.
    pub in_lines: bool,
}

impl EventSpec {
    /// Writes the event's JSON text and records its markers and controls.
    pub fn render(&self) -> Planted {
        let mut w = Writer::new(self);
        let fields: Vec<TopField> =
            [TopField::Lines(self.lines.clone()), TopField::Error(self.error.clone())].into_iter().chain(self.fields.iter().cloned()).collect();
        let identity_at = usize::from(self.identity_at) % (fields.len() + 1);
        w.out.push('{');
        let mut first = true;
        for (i, field) in fields.iter().enumerate() {
            if i == identity_at {
                w.identity(&mut first);
            }
            w.member_start(&mut first);
            match field {
                TopField::Lines(lines) => {
                    w.key("lines");
                    w.lines(lines);
                }
                TopField::Error(error) => {
                    w.key("error");
                    w.error(error, Class::Secret);
                }
                TopField::Other(name, value) => {
                    w.key(name.as_str());
                    w.control(value, false);
                }
            }
        }
        if identity_at == fields.len() {
            w.identity(&mut first);
        }
        w.ws();
        w.out.push('}');
        w.shapes.sort_unstable();
        w.shapes.dedup();
        Planted { body: w.out, secrets: w.secrets, controls: w.controls, has_steps: w.has_steps, shapes: w.shapes, kind: self.kind }
    }
}

struct Writer<'s> {
    spec: &'s EventSpec,
    out: String,
    spacing_at: usize,
    spelling_at: usize,
    next_marker: u32,
    secrets: usize,
    controls: Vec<Control>,
    has_steps: bool,
    error_null_seen: bool,
    shapes: Vec<&'static str>,
}

/// Whether the markers written are secret or control.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Secret,
    Control,
}

impl<'s> Writer<'s> {
    fn new(spec: &'s EventSpec) -> Self {
        Writer {
            spec,
            out: String::new(),
            spacing_at: 0,
            spelling_at: 0,
            next_marker: 0,
            secrets: 0,
            controls: Vec::new(),
            has_steps: false,
            error_null_seen: false,
            shapes: Vec::new(),
        }
    }

    fn shape(&mut self, name: &'static str) {
        self.shapes.push(name);
    }

    fn ws(&mut self) {
        if self.spec.spacing.is_empty() {
            return;
        }
        let spacing = self.spec.spacing[self.spacing_at % self.spec.spacing.len()];
        self.spacing_at += 1;
        self.out.push_str(match spacing {
            Spacing::None => "",
            Spacing::Space => " ",
            Spacing::Newline => "\n",
            Spacing::Tab => "\t",
            Spacing::CrLfIndent => "\r\n  ",
        });
    }

    fn marker(&mut self, class: Class) -> String {
        self.next_marker += 1;
        match class {
            Class::Secret => {
                self.secrets += 1;
                format!("{SECRET_PREFIX}{:05}", self.next_marker)
            }
            Class::Control => format!("{CONTROL_PREFIX}{:05}", self.next_marker),
        }
    }

    /// Starts an object member: the comma if needed and the whitespace before the key.
    fn member_start(&mut self, first: &mut bool) {
        if !*first {
            self.ws();
            self.out.push(',');
        }
        *first = false;
        self.ws();
    }

    /// Writes `"name":` with the next spelling, and the whitespace around the colon.
    fn key(&mut self, name: &str) {
        let spelling = match self.spec.spellings.len() {
            0 => Spelling::Plain,
            n => self.spec.spellings[self.spelling_at % n],
        };
        self.spelling_at += 1;
        self.spelled_key(name, spelling);
    }

    /// Writes a key as it is: a marker is always written literally, so that a leak is found.
    fn plain_key(&mut self, name: &str) {
        self.spelled_key(name, Spelling::Plain);
    }

    fn spelled_key(&mut self, name: &str, spelling: Spelling) {
        self.out.push('"');
        let escape = |c: char, upper: bool| {
            if upper {
                format!("\\u{:04X}", u32::from(c))
            } else {
                format!("\\u{:04x}", u32::from(c))
            }
        };
        match spelling {
            Spelling::Plain => self.out.push_str(name),
            Spelling::EscapeOne(at) | Spelling::EscapeOneUpper(at) => {
                let at = usize::from(at) % name.len().max(1);
                for (i, c) in name.chars().enumerate() {
                    if i == at {
                        self.out.push_str(&escape(c, matches!(spelling, Spelling::EscapeOneUpper(_))));
                    } else {
                        self.out.push(c);
                    }
                }
            }
            Spelling::EscapeAll => {
                for c in name.chars() {
                    self.out.push_str(&escape(c, false));
                }
            }
        }
        if !matches!(spelling, Spelling::Plain) && matches!(name, "lines" | "error" | "mask_data" | "input" | "output") {
            self.shape("escaped key");
        }
        self.out.push('"');
        self.ws();
        self.out.push(':');
        self.ws();
    }

    fn identity(&mut self, first: &mut bool) {
        let fields: &[(&str, &str)] = match self.spec.kind {
            Kind::Job => &[
                ("id", r#""j-1""#),
                ("recipe_id", "7"),
                ("status", r#""failed""#),
                ("completed_at", r#""2022-10-19T22:30:46-07:00""#),
                ("context", r#"{"user_id":5}"#),
            ],
            Kind::Activity => &[("id", "9"), ("event_type", r#""user_login""#), ("workspace", r#"{"id":5}"#), ("timestamp", r#""2024-05-01T10:15:30.000Z""#)],
            Kind::Other => &[("request_id", r#""req-1""#), ("workspace_id", "5"), ("timestamp", r#""2024-05-01T10:15:30.000Z""#)],
        };
        self.shape(match self.spec.kind {
            Kind::Job => "job event",
            Kind::Activity => "activity event",
            Kind::Other => "other event",
        });
        for &(name, value) in fields {
            self.member_start(first);
            self.key(name);
            self.out.push_str(value);
        }
    }

    /// A value whose markers are control, recorded as a control.
    fn control(&mut self, value: &Value, in_lines: bool) {
        let start = self.out.len();
        self.value(value, Class::Control, 0);
        self.controls.push(Control { text: self.out[start..].to_owned(), in_lines });
    }

    fn lines(&mut self, lines: &LinesSpec) {
        match lines {
            LinesSpec::Null => {
                self.shape("lines null");
                self.out.push_str("null");
            }
            LinesSpec::Text => {
                self.shape("lines text");
                self.out.push_str(r#""Log lines exceed size limit""#);
            }
            LinesSpec::SerializedSteps(steps) => {
                self.shape("lines serialized into a string");
                let (outer, controls) = (std::mem::take(&mut self.out), self.controls.len());
                self.steps(steps);
                // What is inside the string is not required to be kept.
                self.controls.truncate(controls);
                let text = std::mem::replace(&mut self.out, outer);
                self.json_string(&text);
            }
            LinesSpec::Steps(steps) => {
                if self.has_steps {
                    self.shape("lines twice");
                }
                self.has_steps = true;
                self.steps(steps);
            }
        }
    }

    fn steps(&mut self, steps: &[LineSpec]) {
        self.out.push('[');
        for (i, line) in steps.iter().enumerate() {
            if i > 0 {
                self.ws();
                self.out.push(',');
            }
            self.ws();
            self.line(line);
        }
        self.ws();
        self.out.push(']');
    }

    fn line(&mut self, line: &LineSpec) {
        let masks = line.masks();
        self.shape(if masks { "line masked" } else { "line kept" });
        let count = |f: fn(&LineField) -> bool| line.fields.iter().filter(|x| f(x)).count();
        if count(|f| matches!(f, LineField::MaskData(_))) > 1 {
            self.shape("mask_data twice");
        }
        if count(|f| matches!(f, LineField::Input(_))) > 1 {
            self.shape("input twice");
        }
        self.out.push('{');
        let mut first = true;
        for field in &line.fields {
            self.member_start(&mut first);
            match field {
                LineField::MaskData(mask_data) => {
                    self.key("mask_data");
                    self.mask_data(mask_data);
                }
                LineField::Input(value) | LineField::Output(value) => {
                    self.key(if matches!(field, LineField::Input(_)) { "input" } else { "output" });
                    if masks {
                        self.secret_value(value);
                    } else {
                        self.control(value, true);
                    }
                }
                LineField::Meta(name, value) => {
                    self.key(name.as_str());
                    self.control(value, true);
                }
                LineField::Error(error) => {
                    self.key("error");
                    if masks {
                        self.shape("masked line's error");
                        self.error(error, Class::Secret);
                    } else {
                        let start = self.out.len();
                        self.error(error, Class::Control);
                        self.controls.push(Control { text: self.out[start..].to_owned(), in_lines: true });
                    }
                }
            }
        }
        self.ws();
        self.out.push('}');
    }

    fn mask_data(&mut self, mask_data: &MaskData) {
        match mask_data {
            MaskData::Masks(m) => {
                self.shape(match m {
                    Masking::True => "mask_data true",
                    Masking::TrueString(_) => "mask_data \"true\"",
                    Masking::One | Masking::Number(_) => "mask_data number",
                    Masking::OneString | Masking::OtherString(_) => "mask_data other string",
                    Masking::EmptyObject | Masking::Object(_) => "mask_data object",
                    Masking::Array(_) => "mask_data array",
                });
                match m {
                    Masking::True => self.out.push_str("true"),
                    Masking::TrueString(bits) => self.cased("true", *bits),
                    Masking::One => self.out.push('1'),
                    Masking::OneString => self.out.push_str(r#""1""#),
                    Masking::Number(n) => self.out.push_str(match n {
                        NonZero::MinusOne => "-1",
                        NonZero::Two => "2",
                        NonZero::Half => "0.5",
                        NonZero::Tiny => "1e-400",
                        NonZero::Big => "1E+3",
                    }),
                    Masking::EmptyObject => self.out.push_str("{}"),
                    // What a masking mask_data holds is not data to protect, but it is
                    // written with control markers: whether it is kept is not the rule's concern.
                    Masking::Object(value) => {
                        self.out.push_str("{\"v\":");
                        self.value(value, Class::Control, 1);
                        self.out.push('}');
                    }
                    Masking::Array(values) => {
                        self.out.push('[');
                        for (i, value) in values.iter().enumerate() {
                            if i > 0 {
                                self.out.push(',');
                            }
                            self.value(value, Class::Control, 1);
                        }
                        self.out.push(']');
                    }
                    Masking::OtherString(pick) => self.out.push_str(match pick % 5 {
                        0 => r#""""#,
                        1 => r#""yes""#,
                        2 => r#"" false""#,
                        3 => r#""no""#,
                        _ => r#""0""#,
                    }),
                }
            }
            MaskData::Keeps(k) => {
                self.shape("mask_data not masking");
                match k {
                    NotMasking::Null => self.out.push_str("null"),
                    NotMasking::False => self.out.push_str("false"),
                    NotMasking::Zero => self.out.push('0'),
                    NotMasking::FalseString(bits) => self.cased("false", *bits),
                    NotMasking::FalseStringEscaped => self.out.push_str(r#""f\u0061lse""#),
                }
            }
        }
    }

    /// A string literal of `word` with the letters whose bit is set in upper case.
    fn cased(&mut self, word: &str, bits: u8) {
        self.out.push('"');
        for (i, c) in word.chars().enumerate() {
            self.out.push(if bits >> i & 1 == 1 { c.to_ascii_uppercase() } else { c });
        }
        self.out.push('"');
    }

    /// An `error` value; the inputs it carries (and all of an array) get markers of `class`.
    fn error(&mut self, error: &ErrorSpec, class: Class) {
        if self.error_null_seen && !matches!(error, ErrorSpec::Null) {
            self.shape("error null then error");
        }
        match error {
            ErrorSpec::Null => {
                self.shape("error null");
                self.error_null_seen = true;
                self.out.push_str("null");
            }
            ErrorSpec::Message => {
                self.shape("error message");
                self.out.push_str(r#""Request timed out after 60 s""#);
            }
            ErrorSpec::JsonString(fields) => {
                self.shape("error JSON string");
                let inner = self.error_document(fields, class);
                self.json_string(&inner);
            }
            ErrorSpec::Object(fields) => {
                self.shape("error object");
                let inner = self.error_document(fields, class);
                self.out.push_str(&inner);
            }
            ErrorSpec::Array(values) => {
                self.shape("error array");
                self.out.push('[');
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.ws();
                    self.value(value, class, 1);
                }
                // An empty array still gets a marker, so that the shape always has one.
                if values.is_empty() {
                    let marker = self.marker(class);
                    self.out.push_str(&format!("\"{marker}\""));
                }
                self.out.push(']');
            }
            ErrorSpec::LooseString(loose, fields) => {
                self.shape("error loose string");
                let mut fields = fields.clone();
                // A loose text is only required to be replaced when it could hold an input.
                if !fields.iter().any(|f| matches!(f, ErrorField::Input(_))) {
                    fields.push(ErrorField::Input(Value::Text(TextStyle::Plain)));
                }
                let doc = self.error_document(&fields, class);
                let text = match loose {
                    Loose::TrailingText => format!("{doc} (see logs)"),
                    Loose::NotANumber => {
                        format!("{}, \"retry_after\": NaN}}", &doc[..doc.len() - 1])
                    }
                    Loose::Truncated => doc[..doc.len() - 1].to_owned(),
                    Loose::ArrayOfObject => format!("[{doc}]"),
                    Loose::SingleQuotes => doc.replace('"', "'"),
                    Loose::Prefixed => format!("HTTP 500: {doc}"),
                    Loose::Doubled => format!("{doc}{doc}"),
                };
                self.json_string(&text);
            }
        }
    }

    /// An error document: `{"message":…, "input":…}` with duplicates where the spec has them,
    /// every input's markers of `class`.
    fn error_document(&mut self, fields: &[ErrorField], class: Class) -> String {
        let outer = std::mem::take(&mut self.out);
        self.out.push('{');
        let mut first = true;
        let mut inputs = 0;
        for field in fields {
            self.member_start(&mut first);
            match field {
                ErrorField::Input(value) => {
                    inputs += 1;
                    self.key("input");
                    match class {
                        Class::Secret => self.secret_value(value),
                        Class::Control => self.value(value, class, 1),
                    }
                }
                ErrorField::Message => {
                    self.key("message");
                    self.out.push_str(r#""Bad request""#);
                }
                ErrorField::ErrorId => {
                    self.key("error_id");
                    self.out.push_str(r#""e-42""#);
                }
            }
        }
        if inputs > 1 {
            self.shape("error input twice");
        }
        self.ws();
        self.out.push('}');
        std::mem::replace(&mut self.out, outer)
    }

    fn json_string(&mut self, text: &str) {
        // serde_json writes a string the strict way; markers are ASCII letters and digits, so
        // they stay literal inside it.
        self.out.push_str(&serde_json::to_string(text).unwrap_or_default());
    }

    /// A value whose markers are secret, wrapped in an array with one more secret when it has
    /// none of its own (a number, `null`), so that every masked value has something to leak.
    fn secret_value(&mut self, value: &Value) {
        let (start, before) = (self.out.len(), self.secrets);
        self.value(value, Class::Secret, 0);
        if self.secrets == before {
            self.out.insert(start, '[');
            let marker = self.marker(Class::Secret);
            self.out.push_str(&format!(",\"{marker}\"]"));
        }
    }

    fn value(&mut self, value: &Value, class: Class, depth: usize) {
        match value {
            Value::Text(style) => self.text(*style, class),
            Value::Number(n) => self.out.push_str(&n.to_string()),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Null => self.out.push_str("null"),
            Value::Array(_) | Value::Object(_) if depth >= MAX_VALUE_DEPTH => self.text(TextStyle::Plain, class),
            Value::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.ws();
                        self.out.push(',');
                    }
                    self.ws();
                    self.value(item, class, depth + 1);
                }
                self.ws();
                self.out.push(']');
            }
            Value::Object(members) => {
                self.out.push('{');
                let mut first = true;
                for (key, item) in members {
                    self.member_start(&mut first);
                    match key {
                        ValueKey::Marker => {
                            let marker = self.marker(class);
                            self.plain_key(&marker);
                        }
                        ValueKey::Input => self.key("input"),
                        ValueKey::MaskData => self.key("mask_data"),
                        ValueKey::Lines => self.key("lines"),
                        ValueKey::Data => self.key("data"),
                    }
                    self.value(item, class, depth + 1);
                }
                self.ws();
                self.out.push('}');
            }
        }
    }

    fn text(&mut self, style: TextStyle, class: Class) {
        let marker = self.marker(class);
        let text = match style {
            TextStyle::Plain => format!("\"{marker}\""),
            TextStyle::Quotes => format!(r#""say \"{marker}\" \\ ok""#),
            TextStyle::Newline => format!(r#""line one\n{marker}\tend""#),
            TextStyle::Unicode => format!("\"caf\u{e9} {marker} \u{1F600}\""),
            TextStyle::EscapedUnicode => format!(r#""\u00e9\uD83D\uDE00{marker}\u0000""#),
            TextStyle::Long => format!("\"{}{marker}{}\"", "x".repeat(70), "y".repeat(70)),
        };
        self.out.push_str(&text);
    }
}
