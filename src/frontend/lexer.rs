//! The lexer: source text to tokens with byte-offset spans.
//!
//! Newlines are significant and come out as [`Tok::Newline`] tokens (runs are
//! collapsed into one; a block comment that spans lines counts as a newline).
//! String literals without interpolation become [`Tok::Str`]; strings with
//! `${...}` become [`Tok::Interp`], whose expression parts only record the
//! source range of the expression: the parser lexes and parses that range
//! again with [`tokenize_range`], so all spans stay absolute.
//!
//! Choices made where the language page is silent:
//! - Extra escape `\$` (a literal `$`, so `"\${x}"` is not interpolated);
//!   any other unknown escape is an error. Strings may contain raw newlines.
//! - `${expr:.N}`: the format is recognised at a `:` outside any bracket of
//!   the expression; N is at most 1000; anything else after `:` is an error.
//! - `1.` not followed by a digit is the Int `1` then `.`, so `0..10` is a
//!   range and `1.abs()` a method call. A number directly followed by a
//!   letter or digit (`12ab`, `0b12`) is an error. Hex and binary literals
//!   above i64::MAX are out of range (no two's-complement wrap). Float
//!   literals too large for f64 become `inf`.
//! - A leading byte-order mark and a `#!` first line are skipped; a block
//!   comment that spans lines counts as a newline.

use super::ast::{CompileError, Span};

/// The kinds of token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    /// An integer literal's magnitude. Values above `i64::MAX` are kept so
    /// that the parser can accept `-9223372036854775808`; it reports every
    /// other out-of-range literal.
    Int(u64),
    Float(f64),
    /// A string literal without interpolation (escapes already decoded).
    Str(String),
    /// A string literal with at least one `${...}`.
    Interp(Vec<StrPart>),

    // Keywords.
    Let,
    Fn,
    Return,
    If,
    Else,
    While,
    For,
    In,
    Loop,
    Break,
    Continue,
    True,
    False,
    Nil,
    Struct,
    Impl,
    SelfKw,

    // Punctuation.
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Semi,
    Colon,
    Dot,
    DotDot,
    DotDotEq,
    Arrow,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Assign,
    PlusEq,
    MinusEq,
    StarEq,
    SlashEq,
    PercentEq,
    Bang,
    Tilde,
    Amp,
    Pipe,
    Caret,
    AndAnd,
    OrOr,
    Shl,
    Shr,

    Newline,
    Eof,
}

/// One piece of an interpolated string.
#[derive(Clone, Debug, PartialEq)]
pub enum StrPart {
    /// Literal text, escapes decoded.
    Lit(String),
    /// `${expr}` / `${expr:.N}`: `start..end` is the byte range of `expr` in
    /// the source; `span` covers the whole `${...}`.
    Expr { start: usize, end: usize, precision: Option<u32>, span: Span },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub kind: Tok,
    pub span: Span,
}

impl Tok {
    /// The keyword token for `word`, if it is one.
    pub fn keyword(word: &str) -> Option<Tok> {
        Some(match word {
            "let" => Tok::Let,
            "fn" => Tok::Fn,
            "return" => Tok::Return,
            "if" => Tok::If,
            "else" => Tok::Else,
            "while" => Tok::While,
            "for" => Tok::For,
            "in" => Tok::In,
            "loop" => Tok::Loop,
            "break" => Tok::Break,
            "continue" => Tok::Continue,
            "true" => Tok::True,
            "false" => Tok::False,
            "nil" => Tok::Nil,
            "struct" => Tok::Struct,
            "impl" => Tok::Impl,
            "self" => Tok::SelfKw,
            _ => return None,
        })
    }

    /// The fixed source text of a keyword or punctuation token.
    pub fn text(&self) -> Option<&'static str> {
        Some(match self {
            Tok::Let => "let",
            Tok::Fn => "fn",
            Tok::Return => "return",
            Tok::If => "if",
            Tok::Else => "else",
            Tok::While => "while",
            Tok::For => "for",
            Tok::In => "in",
            Tok::Loop => "loop",
            Tok::Break => "break",
            Tok::Continue => "continue",
            Tok::True => "true",
            Tok::False => "false",
            Tok::Nil => "nil",
            Tok::Struct => "struct",
            Tok::Impl => "impl",
            Tok::SelfKw => "self",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Comma => ",",
            Tok::Semi => ";",
            Tok::Colon => ":",
            Tok::Dot => ".",
            Tok::DotDot => "..",
            Tok::DotDotEq => "..=",
            Tok::Arrow => "->",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Assign => "=",
            Tok::PlusEq => "+=",
            Tok::MinusEq => "-=",
            Tok::StarEq => "*=",
            Tok::SlashEq => "/=",
            Tok::PercentEq => "%=",
            Tok::Bang => "!",
            Tok::Tilde => "~",
            Tok::Amp => "&",
            Tok::Pipe => "|",
            Tok::Caret => "^",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            Tok::Shl => "<<",
            Tok::Shr => ">>",
            _ => return None,
        })
    }

    /// A short description for error messages: `'('`, `` `let` ``,
    /// `` identifier `x` ``, `newline`, `end of file`, ...
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("identifier `{name}`"),
            Tok::Int(n) => format!("integer `{n}`"),
            Tok::Float(x) => format!("number `{x:?}`"),
            Tok::Str(_) | Tok::Interp(_) => "string literal".to_string(),
            Tok::Newline => "newline".to_string(),
            Tok::Eof => "end of file".to_string(),
            Tok::Let
            | Tok::Fn
            | Tok::Return
            | Tok::If
            | Tok::Else
            | Tok::While
            | Tok::For
            | Tok::In
            | Tok::Loop
            | Tok::Break
            | Tok::Continue
            | Tok::True
            | Tok::False
            | Tok::Nil
            | Tok::Struct
            | Tok::Impl
            | Tok::SelfKw => format!("`{}`", self.text().unwrap_or("?")),
            _ => format!("'{}'", self.text().unwrap_or("?")),
        }
    }
}

/// Lexes a whole source text. The last token is always [`Tok::Eof`].
/// A leading byte-order mark and a `#!` first line are skipped.
pub fn tokenize(source: &str) -> Result<Vec<Token>, CompileError> {
    let mut start = 0;
    if source.starts_with('\u{FEFF}') {
        start = '\u{FEFF}'.len_utf8();
    }
    if source[start..].starts_with("#!") {
        start = source[start..].find('\n').map_or(source.len(), |i| start + i);
    }
    tokenize_range(source, start, source.len())
}

/// Lexes the byte range `start..end` of `source` (used for the expressions
/// inside `${...}`); spans are absolute offsets into `source`. The last token
/// is [`Tok::Eof`] with an empty span at `end`.
pub fn tokenize_range(source: &str, start: usize, end: usize) -> Result<Vec<Token>, CompileError> {
    let mut lexer = Lexer { src: source, bytes: source.as_bytes(), pos: start, end, tokens: Vec::new() };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'s> {
    src: &'s str,
    bytes: &'s [u8],
    pos: usize,
    end: usize,
    tokens: Vec<Token>,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'s> Lexer<'s> {
    fn at(&self, i: usize) -> Option<u8> {
        if i < self.end {
            Some(self.bytes[i])
        } else {
            None
        }
    }

    fn push(&mut self, kind: Tok, start: usize, end: usize) {
        self.tokens.push(Token { kind, span: Span::new(start, end) });
    }

    fn newline(&mut self, at: usize) {
        match self.tokens.last() {
            None | Some(Token { kind: Tok::Newline, .. }) => {}
            _ => self.push(Tok::Newline, at, at + 1),
        }
    }

    fn error<T>(&self, message: impl Into<String>, start: usize, end: usize) -> Result<T, CompileError> {
        Err(CompileError::new(message, Span::new(start, end)))
    }

    /// The (whole) character starting at byte `i`.
    fn char_at(&self, i: usize) -> char {
        self.src[i..].chars().next().unwrap_or('\u{FFFD}')
    }

    fn run(&mut self) -> Result<(), CompileError> {
        while let Some(b) = self.at(self.pos) {
            let start = self.pos;
            match b {
                b'\n' => {
                    self.newline(start);
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'/' if self.at(start + 1) == Some(b'/') => {
                    while let Some(c) = self.at(self.pos) {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                b'/' if self.at(start + 1) == Some(b'*') => {
                    let end = self.skip_block_comment(start)?;
                    if self.bytes[start..end].contains(&b'\n') {
                        self.newline(start);
                    }
                    self.pos = end;
                }
                b'"' => {
                    let (kind, end) = self.string(start)?;
                    self.push(kind, start, end);
                    self.pos = end;
                }
                b'0'..=b'9' => self.number(start)?,
                b if is_ident_start(b) => {
                    let mut end = start + 1;
                    while self.at(end).is_some_and(is_ident_continue) {
                        end += 1;
                    }
                    let word = &self.src[start..end];
                    let kind = Tok::keyword(word).unwrap_or_else(|| Tok::Ident(word.to_string()));
                    self.push(kind, start, end);
                    self.pos = end;
                }
                _ => self.punct(start)?,
            }
        }
        self.push(Tok::Eof, self.end, self.end);
        Ok(())
    }

    /// Skips a (nested) block comment starting at `start`; returns the offset after it.
    fn skip_block_comment(&self, start: usize) -> Result<usize, CompileError> {
        let mut i = start + 2;
        let mut depth = 1u32;
        while depth > 0 {
            match (self.at(i), self.at(i + 1)) {
                (None, _) => return self.error("unterminated block comment", start, start + 2),
                (Some(b'/'), Some(b'*')) => {
                    depth += 1;
                    i += 2;
                }
                (Some(b'*'), Some(b'/')) => {
                    depth -= 1;
                    i += 2;
                }
                _ => i += 1,
            }
        }
        Ok(i)
    }

    fn punct(&mut self, start: usize) -> Result<(), CompileError> {
        let b = self.bytes[start];
        let next = self.at(start + 1);
        let (kind, len) = match (b, next) {
            (b'.', Some(b'.')) if self.at(start + 2) == Some(b'=') => (Tok::DotDotEq, 3),
            (b'.', Some(b'.')) => (Tok::DotDot, 2),
            (b'-', Some(b'>')) => (Tok::Arrow, 2),
            (b'=', Some(b'=')) => (Tok::EqEq, 2),
            (b'!', Some(b'=')) => (Tok::NotEq, 2),
            (b'<', Some(b'=')) => (Tok::Le, 2),
            (b'>', Some(b'=')) => (Tok::Ge, 2),
            (b'<', Some(b'<')) => (Tok::Shl, 2),
            (b'>', Some(b'>')) => (Tok::Shr, 2),
            (b'&', Some(b'&')) => (Tok::AndAnd, 2),
            (b'|', Some(b'|')) => (Tok::OrOr, 2),
            (b'+', Some(b'=')) => (Tok::PlusEq, 2),
            (b'-', Some(b'=')) => (Tok::MinusEq, 2),
            (b'*', Some(b'=')) => (Tok::StarEq, 2),
            (b'/', Some(b'=')) => (Tok::SlashEq, 2),
            (b'%', Some(b'=')) => (Tok::PercentEq, 2),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b'{', _) => (Tok::LBrace, 1),
            (b'}', _) => (Tok::RBrace, 1),
            (b',', _) => (Tok::Comma, 1),
            (b';', _) => (Tok::Semi, 1),
            (b':', _) => (Tok::Colon, 1),
            (b'.', _) => (Tok::Dot, 1),
            (b'+', _) => (Tok::Plus, 1),
            (b'-', _) => (Tok::Minus, 1),
            (b'*', _) => (Tok::Star, 1),
            (b'/', _) => (Tok::Slash, 1),
            (b'%', _) => (Tok::Percent, 1),
            (b'<', _) => (Tok::Lt, 1),
            (b'>', _) => (Tok::Gt, 1),
            (b'=', _) => (Tok::Assign, 1),
            (b'!', _) => (Tok::Bang, 1),
            (b'~', _) => (Tok::Tilde, 1),
            (b'&', _) => (Tok::Amp, 1),
            (b'|', _) => (Tok::Pipe, 1),
            (b'^', _) => (Tok::Caret, 1),
            _ => {
                let c = self.char_at(start);
                return self.error(format!("unexpected character `{}`", c.escape_debug()), start, start + c.len_utf8());
            }
        };
        self.push(kind, start, start + len);
        self.pos = start + len;
        Ok(())
    }

    fn number(&mut self, start: usize) -> Result<(), CompileError> {
        let radix = match (self.bytes[start], self.at(start + 1)) {
            (b'0', Some(b'x' | b'X')) => 16,
            (b'0', Some(b'b' | b'B')) => 2,
            _ => 10,
        };
        let mut i = if radix == 10 { start } else { start + 2 };
        let mut value: Option<u64> = Some(0);
        let mut digits = 0usize;
        // Integer digits (for radix 10 also the part before `.`/`e` of a float).
        while let Some(c) = self.at(i) {
            if c == b'_' {
                i += 1;
                continue;
            }
            let d = match (c as char).to_digit(radix) {
                Some(d) => d,
                None => break,
            };
            value = value.and_then(|v| v.checked_mul(u64::from(radix))).and_then(|v| v.checked_add(u64::from(d)));
            digits += 1;
            i += 1;
        }
        if radix != 10 {
            if digits == 0 {
                let what = if radix == 16 { "hexadecimal" } else { "binary" };
                return self.error(format!("expected {what} digits after `{}`", &self.src[start..start + 2]), start, i);
            }
            self.check_suffix(start, i, radix)?;
            return self.finish_int(value, start, i);
        }
        let mut is_float = false;
        if self.at(i) == Some(b'.') && self.at(i + 1).is_some_and(|c| c.is_ascii_digit()) {
            is_float = true;
            i += 1;
            while self.at(i).is_some_and(|c| c.is_ascii_digit() || c == b'_') {
                i += 1;
            }
        }
        if matches!(self.at(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(self.at(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if !self.at(j).is_some_and(|c| c.is_ascii_digit()) {
                return self.error("expected digits in the exponent of a float literal", start, j);
            }
            while self.at(j).is_some_and(|c| c.is_ascii_digit() || c == b'_') {
                j += 1;
            }
            is_float = true;
            i = j;
        }
        self.check_suffix(start, i, 10)?;
        if is_float {
            let text: String = self.src[start..i].chars().filter(|&c| c != '_').collect();
            match text.parse::<f64>() {
                Ok(x) => {
                    self.push(Tok::Float(x), start, i);
                    self.pos = i;
                    Ok(())
                }
                Err(_) => self.error("invalid float literal", start, i),
            }
        } else {
            self.finish_int(value, start, i)
        }
    }

    /// A number directly followed by a letter or digit (`12ab`, `0b102`) is an error.
    fn check_suffix(&self, start: usize, i: usize, radix: u32) -> Result<(), CompileError> {
        if let Some(c) = self.at(i) {
            if is_ident_continue(c) {
                let mut end = i;
                while self.at(end).is_some_and(is_ident_continue) {
                    end += 1;
                }
                let message = if c.is_ascii_digit() {
                    format!("invalid digit `{}` in {} literal", c as char, if radix == 2 { "binary" } else { "number" })
                } else {
                    format!("invalid suffix `{}` on number literal", &self.src[i..end])
                };
                return self.error(message, start, end);
            }
        }
        Ok(())
    }

    fn finish_int(&mut self, value: Option<u64>, start: usize, end: usize) -> Result<(), CompileError> {
        match value {
            Some(v) => {
                self.push(Tok::Int(v), start, end);
                self.pos = end;
                Ok(())
            }
            None => self.error("integer literal out of range", start, end),
        }
    }

    /// Lexes a string literal starting at the `"` at `start`; returns the token
    /// and the offset after the closing quote.
    fn string(&self, start: usize) -> Result<(Tok, usize), CompileError> {
        let mut parts: Vec<StrPart> = Vec::new();
        let mut text = String::new();
        let mut i = start + 1;
        loop {
            let Some(c) = self.at(i) else {
                return self.error("unterminated string", start, start + 1);
            };
            match c {
                b'"' => {
                    i += 1;
                    break;
                }
                b'\\' => {
                    let (ch, next) = self.escape(i)?;
                    text.push(ch);
                    i = next;
                }
                b'$' if self.at(i + 1) == Some(b'{') => {
                    if !text.is_empty() {
                        parts.push(StrPart::Lit(std::mem::take(&mut text)));
                    }
                    let (expr_end, precision, after) = self.interp_end(start, i)?;
                    parts.push(StrPart::Expr { start: i + 2, end: expr_end, precision, span: Span::new(i, after) });
                    i = after;
                }
                c if c < 0x80 => {
                    text.push(c as char);
                    i += 1;
                }
                _ => {
                    let ch = self.char_at(i);
                    text.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        if parts.is_empty() {
            return Ok((Tok::Str(text), i));
        }
        if !text.is_empty() {
            parts.push(StrPart::Lit(text));
        }
        Ok((Tok::Interp(parts), i))
    }

    /// Decodes the escape sequence at `i` (a backslash); returns the character
    /// and the offset after the sequence.
    fn escape(&self, i: usize) -> Result<(char, usize), CompileError> {
        let Some(c) = self.at(i + 1) else {
            return self.error("unterminated string", i, i + 1);
        };
        let simple = match c {
            b'n' => Some('\n'),
            b't' => Some('\t'),
            b'r' => Some('\r'),
            b'\\' => Some('\\'),
            b'"' => Some('"'),
            b'0' => Some('\0'),
            b'$' => Some('$'),
            _ => None,
        };
        if let Some(ch) = simple {
            return Ok((ch, i + 2));
        }
        if c == b'u' {
            if self.at(i + 2) != Some(b'{') {
                return self.error("expected '{' after `\\u`", i, i + 2);
            }
            let mut j = i + 3;
            let mut code: u32 = 0;
            let mut digits = 0;
            while let Some(d) = self.at(j).and_then(|b| (b as char).to_digit(16)) {
                code = code.saturating_mul(16).saturating_add(d);
                digits += 1;
                j += 1;
            }
            if self.at(j) != Some(b'}') {
                return self.error("expected '}' to close the unicode escape", i, j);
            }
            j += 1;
            if digits == 0 || digits > 6 {
                return self.error("invalid unicode escape: expected 1 to 6 hex digits", i, j);
            }
            return match char::from_u32(code) {
                Some(ch) => Ok((ch, j)),
                None => self.error(format!("invalid unicode escape: {code:X} is not a character"), i, j),
            };
        }
        let ch = self.char_at(i + 1);
        self.error(format!("unknown escape sequence `\\{}`", ch.escape_debug()), i, i + 1 + ch.len_utf8())
    }

    /// Finds the end of the interpolation `${...}` whose `$` is at `dollar`
    /// (inside the string starting at `string_start`). Returns the end of the
    /// expression text, the precision of a `:.N` format, and the offset after
    /// the closing `}`. Nested strings and braces are skipped with an explicit
    /// stack, so arbitrarily deep nesting cannot overflow the Rust stack.
    fn interp_end(&self, string_start: usize, dollar: usize) -> Result<(usize, Option<u32>, usize), CompileError> {
        enum Ctx {
            /// Code with this many open brackets of any kind.
            Code(u32),
            Str,
        }
        let mut stack = vec![Ctx::Code(0)];
        let mut i = dollar + 2;
        loop {
            let Some(c) = self.at(i) else {
                return self.error("unterminated string", string_start, string_start + 1);
            };
            let outermost = stack.len() == 1;
            match stack.last_mut() {
                Some(Ctx::Str) => match c {
                    b'\\' => i += 2,
                    b'"' => {
                        stack.pop();
                        i += 1;
                    }
                    b'$' if self.at(i + 1) == Some(b'{') => {
                        stack.push(Ctx::Code(0));
                        i += 2;
                    }
                    _ => i += 1,
                },
                Some(Ctx::Code(depth)) => match c {
                    b'"' => {
                        stack.push(Ctx::Str);
                        i += 1;
                    }
                    b'(' | b'[' | b'{' => {
                        *depth += 1;
                        i += 1;
                    }
                    b')' | b']' | b'}' if *depth > 0 => {
                        *depth -= 1;
                        i += 1;
                    }
                    b'}' => {
                        if outermost {
                            return Ok((i, None, i + 1));
                        }
                        stack.pop();
                        i += 1;
                    }
                    b':' if *depth == 0 && outermost => return self.format_spec(dollar, i),
                    b'/' if self.at(i + 1) == Some(b'/') => {
                        while self.at(i).is_some_and(|c| c != b'\n') {
                            i += 1;
                        }
                    }
                    b'/' if self.at(i + 1) == Some(b'*') => i = self.skip_block_comment(i)?,
                    _ => i += 1,
                },
                None => unreachable!("the outermost context is never popped"),
            }
        }
    }

    /// Parses `:.N}` at `colon`.
    fn format_spec(&self, dollar: usize, colon: usize) -> Result<(usize, Option<u32>, usize), CompileError> {
        let mut j = colon + 1;
        let bad = |end: usize| self.error("invalid format in interpolation: expected `:.N}` (N decimals)", colon, end);
        if self.at(j) != Some(b'.') {
            return bad(j);
        }
        j += 1;
        let digits_start = j;
        while self.at(j).is_some_and(|c| c.is_ascii_digit()) {
            j += 1;
        }
        if j == digits_start || self.at(j) != Some(b'}') {
            return bad(j);
        }
        match self.src[digits_start..j].parse::<u32>() {
            Ok(n) if n <= 1000 => Ok((colon, Some(n), j + 1)),
            _ => self.error("format precision too large (at most 1000)", dollar, j + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.kind).collect()
    }

    fn err(src: &str) -> CompileError {
        tokenize(src).unwrap_err()
    }

    fn ident(s: &str) -> Tok {
        Tok::Ident(s.to_string())
    }

    #[test]
    fn keywords_and_identifiers() {
        assert_eq!(
            kinds("let fn return if else while for in loop break continue true false nil struct impl self"),
            vec![
                Tok::Let,
                Tok::Fn,
                Tok::Return,
                Tok::If,
                Tok::Else,
                Tok::While,
                Tok::For,
                Tok::In,
                Tok::Loop,
                Tok::Break,
                Tok::Continue,
                Tok::True,
                Tok::False,
                Tok::Nil,
                Tok::Struct,
                Tok::Impl,
                Tok::SelfKw,
                Tok::Eof
            ]
        );
        assert_eq!(kinds("_a1 letx Self"), vec![ident("_a1"), ident("letx"), ident("Self"), Tok::Eof]);
    }

    #[test]
    fn integers() {
        assert_eq!(
            kinds("42 0xff 0XFF 0b1010 1_000_000 0x_ff_ff 007"),
            vec![
                Tok::Int(42),
                Tok::Int(255),
                Tok::Int(255),
                Tok::Int(10),
                Tok::Int(1_000_000),
                Tok::Int(0xffff),
                Tok::Int(7),
                Tok::Eof
            ]
        );
        // The magnitude of i64::MIN is lexed; the parser decides.
        assert_eq!(kinds("9223372036854775808"), vec![Tok::Int(9223372036854775808), Tok::Eof]);
        let e = err("x = 18446744073709551616");
        assert_eq!(e.message, "integer literal out of range");
        assert_eq!(e.span, Span::new(4, 24));
        assert!(err("0x").message.contains("hexadecimal digits"));
        assert!(err("0b102").message.contains("invalid digit `2`"));
        assert!(err("12abc").message.contains("invalid suffix `abc`"));
    }

    #[test]
    fn floats() {
        assert_eq!(
            kinds("1.5 2.0e-3 1e9 1E+2 1_0.2_5"),
            vec![Tok::Float(1.5), Tok::Float(2.0e-3), Tok::Float(1e9), Tok::Float(100.0), Tok::Float(10.25), Tok::Eof]
        );
        assert!(err("1e").message.contains("exponent"));
    }

    #[test]
    fn ranges_after_ints_are_not_floats() {
        assert_eq!(kinds("0..10"), vec![Tok::Int(0), Tok::DotDot, Tok::Int(10), Tok::Eof]);
        assert_eq!(kinds("0..=10"), vec![Tok::Int(0), Tok::DotDotEq, Tok::Int(10), Tok::Eof]);
        assert_eq!(kinds("1.5..2"), vec![Tok::Float(1.5), Tok::DotDot, Tok::Int(2), Tok::Eof]);
        assert_eq!(kinds("1.abs"), vec![Tok::Int(1), Tok::Dot, ident("abs"), Tok::Eof]);
    }

    #[test]
    fn operators() {
        assert_eq!(
            kinds("+ - * / % == != < <= > >= = += -= *= /= %= ! ~ & | ^ && || << >> -> . , ; :"),
            vec![
                Tok::Plus,
                Tok::Minus,
                Tok::Star,
                Tok::Slash,
                Tok::Percent,
                Tok::EqEq,
                Tok::NotEq,
                Tok::Lt,
                Tok::Le,
                Tok::Gt,
                Tok::Ge,
                Tok::Assign,
                Tok::PlusEq,
                Tok::MinusEq,
                Tok::StarEq,
                Tok::SlashEq,
                Tok::PercentEq,
                Tok::Bang,
                Tok::Tilde,
                Tok::Amp,
                Tok::Pipe,
                Tok::Caret,
                Tok::AndAnd,
                Tok::OrOr,
                Tok::Shl,
                Tok::Shr,
                Tok::Arrow,
                Tok::Dot,
                Tok::Comma,
                Tok::Semi,
                Tok::Colon,
                Tok::Eof
            ]
        );
        let e = err("a @ b");
        assert_eq!(e.message, "unexpected character `@`");
        assert_eq!(e.span, Span::new(2, 3));
        let e = err("é");
        assert_eq!(e.message, "unexpected character `é`");
        assert_eq!(e.span, Span::new(0, 2));
    }

    #[test]
    fn newlines_collapse_and_comments() {
        assert_eq!(kinds("\n\na\n\n  \n// c\nb"), vec![ident("a"), Tok::Newline, ident("b"), Tok::Eof]);
        assert_eq!(kinds("a /* x /* nested */ y */ b"), vec![ident("a"), ident("b"), Tok::Eof]);
        assert_eq!(kinds("a /* x \n y */ b"), vec![ident("a"), Tok::Newline, ident("b"), Tok::Eof]);
        assert_eq!(kinds("a // c"), vec![ident("a"), Tok::Eof]);
        assert_eq!(kinds("a\r\nb"), vec![ident("a"), Tok::Newline, ident("b"), Tok::Eof]);
        assert_eq!(err("a /* /* */").message, "unterminated block comment");
    }

    #[test]
    fn spans_are_byte_offsets() {
        let toks = tokenize("é = \"ü\" + x").unwrap_err();
        assert_eq!(toks.span, Span::new(0, 2));
        let toks = tokenize("s = \"ü\" + x").unwrap();
        assert_eq!(toks[2].span, Span::new(4, 8));
        assert_eq!(toks[4].span, Span::new(11, 12));
        assert_eq!(toks[5].span, Span::new(12, 12));
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            kinds(r#""a\nb\t\r\\\"\0\u{1F600}\u{41}$x \$""#),
            vec![Tok::Str("a\nb\t\r\\\"\0\u{1F600}A$x $".to_string()), Tok::Eof]
        );
        assert_eq!(kinds("\"ü\nx\""), vec![Tok::Str("ü\nx".to_string()), Tok::Eof]);
        assert!(err(r#""\q""#).message.contains("unknown escape sequence `\\q`"));
        assert!(err(r#""\u{110000}""#).message.contains("invalid unicode escape"));
        assert!(err(r#""\u{}""#).message.contains("invalid unicode escape"));
        assert!(err(r#""\u41""#).message.contains("expected '{'"));
        let e = err("x = \"abc");
        assert_eq!(e.message, "unterminated string");
        assert_eq!(e.span, Span::new(4, 5));
    }

    #[test]
    fn interpolation_parts() {
        let src = r#""x = ${a + 1}!""#;
        let toks = tokenize(src).unwrap();
        let Tok::Interp(parts) = &toks[0].kind else { panic!("{:?}", toks[0]) };
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], StrPart::Lit("x = ".into()));
        let StrPart::Expr { start, end, precision, span } = &parts[1] else { panic!() };
        assert_eq!(&src[*start..*end], "a + 1");
        assert_eq!(*precision, None);
        assert_eq!(&src[span.start as usize..span.end as usize], "${a + 1}");
        assert_eq!(parts[2], StrPart::Lit("!".into()));
    }

    #[test]
    fn interpolation_nested_strings_and_braces() {
        for (src, inner) in [
            (r#""${m["k"]}""#, r#"m["k"]"#),
            (r#""${f({"a":1})}""#, r#"f({"a":1})"#),
            (r#""${"}"}""#, r#""}""#),
            (r#""${"a${b}c"}""#, r#""a${b}c""#),
            (r#""${"a${ {"x": "}"} }c"}""#, r#""a${ {"x": "}"} }c""#),
            (r#""${ {"a": 1}["a"] }""#, r#" {"a": 1}["a"] "#),
        ] {
            let toks = tokenize(src).unwrap();
            let Tok::Interp(parts) = &toks[0].kind else { panic!("{src}") };
            assert_eq!(parts.len(), 1, "{src}");
            let StrPart::Expr { start, end, .. } = &parts[0] else { panic!() };
            assert_eq!(&src[*start..*end], inner, "{src}");
            assert_eq!(toks[1].kind, Tok::Eof);
        }
    }

    #[test]
    fn interpolation_format() {
        let src = r#""${x:.2} ${ {"a": 1}["a"]:.0}""#;
        let toks = tokenize(src).unwrap();
        let Tok::Interp(parts) = &toks[0].kind else { panic!() };
        let StrPart::Expr { start, end, precision, .. } = &parts[0] else { panic!() };
        assert_eq!((&src[*start..*end], *precision), ("x", Some(2)));
        let StrPart::Expr { start, end, precision, .. } = &parts[2] else { panic!() };
        assert_eq!((&src[*start..*end], *precision), (r#" {"a": 1}["a"]"#, Some(0)));
        assert!(err(r#""${x:2}""#).message.contains("invalid format"));
        assert!(err(r#""${x:.}""#).message.contains("invalid format"));
        assert!(err(r#""${x:.2 }""#).message.contains("invalid format"));
    }

    #[test]
    fn dollar_without_brace_is_literal() {
        assert_eq!(kinds(r#""$ $x $$ 5$""#), vec![Tok::Str("$ $x $$ 5$".into()), Tok::Eof]);
    }

    #[test]
    fn unterminated_interpolation() {
        assert_eq!(err(r#"x = "${a"#).message, "unterminated string");
        assert_eq!(err(r#"x = "${a"#).span, Span::new(4, 5));
        assert_eq!(err(r#""${"abc}""#).message, "unterminated string");
    }

    #[test]
    fn deeply_nested_interpolation_does_not_overflow() {
        let mut src = String::new();
        for _ in 0..100_000 {
            src.push_str("\"${");
        }
        src.push('1');
        for _ in 0..100_000 {
            src.push_str("}\"");
        }
        let toks = tokenize(&src).unwrap();
        assert_eq!(toks.len(), 2);
    }

    #[test]
    fn bom_and_shebang_are_skipped() {
        assert_eq!(kinds("\u{FEFF}a"), vec![ident("a"), Tok::Eof]);
        assert_eq!(kinds("#!/usr/bin/env vela\na"), vec![ident("a"), Tok::Eof]);
        assert_eq!(kinds("#!vela"), vec![Tok::Eof]);
        assert_eq!(tokenize("\u{FEFF}a").unwrap()[0].span, Span::new(3, 4));
        assert_eq!(err("a\n#!x").message, "unexpected character `#`");
    }

    #[test]
    fn tokenize_range_is_absolute() {
        let src = "abc (x + 1) def";
        let toks = tokenize_range(src, 5, 10).unwrap();
        assert_eq!(toks[0], Token { kind: ident("x"), span: Span::new(5, 6) });
        assert_eq!(toks[2].span, Span::new(9, 10));
        assert_eq!(toks[3], Token { kind: Tok::Eof, span: Span::new(10, 10) });
    }
}
