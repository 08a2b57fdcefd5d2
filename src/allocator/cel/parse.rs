//! Lexer and recursive-descent parser for the selector subset.

use super::super::quantity::Quantity;

/// Deepest nesting accepted (the API server's cost limit stops real expressions far sooner).
const MAX_DEPTH: usize = 64;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Bool(bool),
    Int(i64),
    Str(String),
    Quantity(Quantity),
    Version(Version),
    List(Vec<Expr>),
    /// `device`, `device.attributes`, `device.capacity`: only valid when selected from.
    Root(Root),
    /// `device.driver`.
    Driver,
    /// `device.allowMultipleAllocations`.
    MultiAlloc,
    /// `device.attributes[domain]` or `device.capacity[domain]`.
    Domain {
        capacity: bool,
        domain: String,
    },
    /// `<domain map>.id` or `<domain map>['id']`.
    Lookup {
        map: Box<Expr>,
        key: String,
    },
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Box<Expr>),
    Method {
        target: Box<Expr>,
        method: Method,
        arg: Box<Expr>,
    },
}

/// The partial paths below `device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    Device,
    Attributes,
    Capacity,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A method the subset understands (each takes one argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    CompareTo,
    IsGreaterThan,
    IsLessThan,
    Contains,
    StartsWith,
    EndsWith,
}

/// A semantic version `major.minor.patch[-pre]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version {
    core: (u64, u64, u64),
    /// `None` sorts after any pre-release, as semver says.
    release: ReleaseTag,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ReleaseTag {
    Pre(String),
    Final,
}

impl Version {
    /// Parses `1.2.3`, `1.2.3-rc.1`, `1.2.3+build` (build ignored); `None` otherwise.
    pub(crate) fn parse(text: &str) -> Option<Version> {
        let text = text.split('+').next()?;
        let (core, pre) = match text.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (text, None),
        };
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let v = (parts.next()??, parts.next()??, parts.next()??);
        if parts.next().is_some() {
            return None;
        }
        Some(Version {
            core: v,
            release: pre.map_or(ReleaseTag::Final, |p| ReleaseTag::Pre(p.to_owned())),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Int(i64),
    Str(String),
    Punct(&'static str),
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
            {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let start = i;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
            if chars
                .get(i)
                .is_some_and(|c| *c == '.' || c.is_ascii_alphabetic())
            {
                return Err("only integer number literals are understood".into());
            }
            let digits: String = chars[start..i].iter().collect();
            let value = digits
                .parse()
                .map_err(|_| format!("integer {digits} out of range"))?;
            tokens.push(Token::Int(value));
        } else if c == '\'' || c == '"' {
            let quote = c;
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string".into()),
                    Some('\\') => return Err("escapes in strings are not understood".into()),
                    Some(&ch) if ch == quote => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Str(s));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let punct = ["==", "!=", "<=", ">=", "&&", "||"]
                .into_iter()
                .find(|p| *p == two);
            if let Some(p) = punct {
                tokens.push(Token::Punct(p));
                i += 2;
                continue;
            }
            let one = match c {
                '<' => "<",
                '>' => ">",
                '!' => "!",
                '(' => "(",
                ')' => ")",
                '[' => "[",
                ']' => "]",
                '.' => ".",
                ',' => ",",
                other => return Err(format!("operator {other:?} is not understood")),
            };
            tokens.push(Token::Punct(one));
            i += 1;
        }
    }
    Ok(tokens)
}

/// Parses a whole expression.
pub(super) fn parse(text: &str) -> Result<Expr, String> {
    let tokens = lex(text)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let expr = parser.or()?;
    if let Some(token) = parser.tokens.get(parser.pos) {
        return Err(format!("unexpected {token:?}"));
    }
    check(&expr, false)?;
    Ok(expr)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek_punct(&self, p: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Punct(q)) if *q == p)
    }

    fn expect(&mut self, p: &str) -> Result<(), String> {
        if self.peek_punct(p) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {p:?} at token {}", self.pos))
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.enter()?;
        let mut left = self.and()?;
        while self.peek_punct("||") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.relation()?;
        while self.peek_punct("&&") {
            self.pos += 1;
            let right = self.relation()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn relation(&mut self) -> Result<Expr, String> {
        let left = self.unary()?;
        let op = match self.tokens.get(self.pos) {
            Some(Token::Punct("==")) => CmpOp::Eq,
            Some(Token::Punct("!=")) => CmpOp::Ne,
            Some(Token::Punct("<")) => CmpOp::Lt,
            Some(Token::Punct("<=")) => CmpOp::Le,
            Some(Token::Punct(">")) => CmpOp::Gt,
            Some(Token::Punct(">=")) => CmpOp::Ge,
            Some(Token::Ident(word)) if word == "in" => {
                self.pos += 1;
                let right = self.unary()?;
                return Ok(Expr::In(Box::new(left), Box::new(right)));
            }
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.unary()?;
        Ok(Expr::Cmp(op, Box::new(left), Box::new(right)))
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_punct("!") {
            self.pos += 1;
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut expr = self.primary()?;
        loop {
            if self.peek_punct(".") {
                self.pos += 1;
                let name = match self.tokens.get(self.pos) {
                    Some(Token::Ident(n)) => n.clone(),
                    _ => return Err("expected a name after '.'".into()),
                };
                self.pos += 1;
                if self.peek_punct("(") {
                    self.pos += 1;
                    let method = match name.as_str() {
                        "compareTo" => Method::CompareTo,
                        "isGreaterThan" => Method::IsGreaterThan,
                        "isLessThan" => Method::IsLessThan,
                        "contains" => Method::Contains,
                        "startsWith" => Method::StartsWith,
                        "endsWith" => Method::EndsWith,
                        other => return Err(format!("method {other}() is not understood")),
                    };
                    let arg = self.or()?;
                    self.expect(")")?;
                    expr = Expr::Method {
                        target: Box::new(expr),
                        method,
                        arg: Box::new(arg),
                    };
                } else {
                    expr = self.select(expr, name)?;
                }
            } else if self.peek_punct("[") {
                self.pos += 1;
                let key = match self.tokens.get(self.pos) {
                    Some(Token::Str(s)) => s.clone(),
                    _ => return Err("only string literal map keys are understood".into()),
                };
                self.pos += 1;
                self.expect("]")?;
                expr = self.select(expr, key)?;
            } else {
                return Ok(expr);
            }
        }
    }

    /// `expr.name` / `expr['name']`.
    fn select(&mut self, expr: Expr, name: String) -> Result<Expr, String> {
        match expr {
            Expr::Domain { .. } => Ok(Expr::Lookup {
                map: Box::new(expr),
                key: name,
            }),
            Expr::Root(Root::Device) => match name.as_str() {
                "driver" => Ok(Expr::Driver),
                "allowMultipleAllocations" => Ok(Expr::MultiAlloc),
                "attributes" => Ok(Expr::Root(Root::Attributes)),
                "capacity" => Ok(Expr::Root(Root::Capacity)),
                other => Err(format!("device.{other} is not understood")),
            },
            Expr::Root(root) => Ok(Expr::Domain {
                capacity: root == Root::Capacity,
                domain: name,
            }),
            _ => Err(format!(
                "field selection .{name} on this value is not understood"
            )),
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or_else(|| "unexpected end of expression".to_owned())?;
        self.pos += 1;
        match token {
            Token::Int(v) => Ok(Expr::Int(v)),
            Token::Str(s) => Ok(Expr::Str(s)),
            Token::Punct("(") => {
                let inner = self.or()?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Punct("[") => {
                let mut items = Vec::new();
                while !self.peek_punct("]") {
                    items.push(self.or()?);
                    if !self.peek_punct("]") {
                        self.expect(",")?;
                    }
                }
                self.pos += 1;
                Ok(Expr::List(items))
            }
            Token::Ident(name) => match name.as_str() {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "device" => Ok(Expr::Root(Root::Device)),
                "quantity" | "semver" if self.peek_punct("(") => {
                    self.pos += 1;
                    let arg = match self.tokens.get(self.pos) {
                        Some(Token::Str(s)) => s.clone(),
                        _ => return Err(format!("{name}() takes a string literal here")),
                    };
                    self.pos += 1;
                    self.expect(")")?;
                    if name == "quantity" {
                        Quantity::parse(&arg)
                            .map(Expr::Quantity)
                            .map_err(|e| e.to_string())
                    } else {
                        Version::parse(&arg)
                            .map(Expr::Version)
                            .ok_or_else(|| format!("semver({arg:?}) is not a version"))
                    }
                }
                other => Err(format!("{other} is not understood")),
            },
            Token::Punct(p) => Err(format!("unexpected {p:?}")),
        }
    }
}

/// Refuses partial paths used as values (`device`, `device.attributes`, a whole domain map
/// outside `in`), which the subset does not evaluate.
fn check(expr: &Expr, map_allowed: bool) -> Result<(), String> {
    match expr {
        Expr::Root(_) => Err("device, device.attributes or device.capacity used as a value".into()),
        Expr::Domain { domain, .. } if !map_allowed => Err(format!(
            "the whole map for domain {domain:?} used as a value"
        )),
        Expr::Bool(_)
        | Expr::Int(_)
        | Expr::Str(_)
        | Expr::Quantity(_)
        | Expr::Version(_)
        | Expr::Driver
        | Expr::MultiAlloc
        | Expr::Domain { .. } => Ok(()),
        Expr::Lookup { .. } => Ok(()),
        Expr::List(items) => items.iter().try_for_each(|e| check(e, false)),
        Expr::Not(e) => check(e, false),
        Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(_, a, b) => {
            check(a, false)?;
            check(b, false)
        }
        Expr::In(a, b) => {
            check(a, false)?;
            check(b, true)
        }
        Expr::Method { target, arg, .. } => {
            check(target, false)?;
            check(arg, false)
        }
    }
}
