//! `application/x-www-form-urlencoded` values (the WHATWG URL standard's form encoding): every
//! byte but ASCII letters, digits and `*-._` is percent-encoded, a space becomes `+`.

use std::fmt::Write;

/// `value` form-encoded.
pub fn form(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for byte in value.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                // Writing to a String cannot fail.
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}
