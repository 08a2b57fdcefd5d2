//! The envelope both of the plugin's state files (`checkpoint.json`, `mps-daemons.json`) are
//! written in: `{"version": …, "checksum": …, "data": …}`, the checksum being the CRC-32 of
//! `data`'s compact JSON. A torn or hand-edited file then reads as corrupt instead of as a
//! different, plausible state. Each file keeps its own reader (the checkpoint's admits later
//! sections beside `data`); what they share is how the bytes are made and checked.

use serde::Serialize;

/// The bytes of `data` in its envelope, stamped `version`.
pub(super) fn seal<T: Serialize>(version: u32, data: &T) -> Result<Vec<u8>, serde_json::Error> {
    // Field order is the file format: version, checksum, data.
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        version: u32,
        checksum: u32,
        data: &'a T,
    }
    serde_json::to_vec(&Envelope {
        version,
        checksum: checksum(data)?,
        data,
    })
}

/// Why `data` read from an envelope does not match the envelope's `claimed` checksum, if it
/// does not.
pub(super) fn mismatch<T: Serialize>(claimed: u32, data: &T) -> Option<String> {
    match checksum(data) {
        Ok(computed) if computed == claimed => None,
        Ok(computed) => Some(format!(
            "checksum mismatch: file says {claimed}, content gives {computed}"
        )),
        Err(e) => Some(e.to_string()),
    }
}

fn checksum<T: Serialize>(data: &T) -> Result<u32, serde_json::Error> {
    Ok(crc32fast::hash(&serde_json::to_vec(data)?))
}
