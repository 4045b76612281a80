//! Request parameters as PHP's `$_POST` sees an
//! `application/x-www-form-urlencoded` body (API.md §1.1): `a[0]`, `a[13]`
//! and `a[]` keys (brackets possibly percent-encoded, which form decoding
//! undoes) become one ordered, indexed [`PhpArray`] per name; every other
//! key is a scalar. Also owns PHP's view of "empty" and of booleans.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// The parameters of one request.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Form {
    pub scalars: BTreeMap<String, String>,
    pub arrays: BTreeMap<String, PhpArray>,
}

/// A one-level PHP array: `index → value` in insertion order, indexes
/// unique (a repeated index overwrites in place, as in PHP).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PhpArray {
    entries: Vec<(String, String)>,
}

impl PhpArray {
    pub fn get(&self, index: &str) -> Option<&str> {
        self.entries.iter().find(|(i, _)| i == index).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(i, v)| (i.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn set(&mut self, index: String, value: String) {
        match self.entries.iter_mut().find(|(i, _)| *i == index) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((index, value)),
        }
    }

    /// `a[]=v`: PHP appends at one past the largest integer index so far.
    fn push(&mut self, value: String) {
        let next = self
            .entries
            .iter()
            .filter_map(|(i, _)| i.parse::<i64>().ok())
            .max()
            .map_or(0, |m| m.saturating_add(1).max(0));
        self.entries.push((next.to_string(), value));
    }
}

impl Serialize for PhpArray {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.entries.len()))?;
        for (i, v) in &self.entries {
            map.serialize_entry(i, v)?;
        }
        map.end()
    }
}

/// PHP mangles `.` and spaces in a top-level parameter name to `_`.
fn php_name(name: &str) -> String {
    name.replace(['.', ' '], "_")
}

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        let mut form = Form::default();
        for (key, value) in form_urlencoded::parse(body) {
            let value = value.into_owned();
            // `name[index]…`: only the first bracket pair counts (nested
            // arrays are not part of the contract); `name[` without a `]`
            // is a plain key whose `[` PHP mangles to `_`.
            let bracket = key
                .find('[')
                .and_then(|open| key[open + 1..].find(']').map(|len| (open, open + 1 + len)));
            match bracket {
                Some((open, close)) if open > 0 => {
                    let list = form.arrays.entry(php_name(&key[..open])).or_default();
                    let index = &key[open + 1..close];
                    if index.is_empty() {
                        list.push(value);
                    } else {
                        list.set(index.to_owned(), value);
                    }
                }
                Some(_) => {} // `[0]=x`: PHP drops a key with no name.
                None => {
                    form.scalars.insert(php_name(&key).replacen('[', "_", 1), value);
                }
            }
        }
        form
    }

    /// A scalar as sent, including the empty string.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.scalars.get(key).map(String::as_str)
    }

    /// A scalar, `None` when absent or `""` (how WHMCS tests "not given").
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw(key).filter(|v| !v.is_empty())
    }

    pub fn array(&self, key: &str) -> Option<&PhpArray> {
        self.arrays.get(key)
    }

    /// PHP truthiness of a flag: everything but absent, `""` and `"0"` is
    /// true (so `"false"` is true, as it would be in PHP). That WHMCS casts
    /// its bool parameters this way is `[unconfirmed]`; cdrate sends `1`/`0`.
    pub fn flag(&self, key: &str) -> bool {
        truthy(self.raw(key))
    }
}

/// PHP's `(bool)` of a request string.
pub fn truthy(v: Option<&str>) -> bool {
    !matches!(v, None | Some("" | "0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(a: &PhpArray) -> Vec<(&str, &str)> {
        a.iter().collect()
    }

    #[test]
    fn php_bracket_keys() {
        let f = Form::parse(
            b"action=UpdateInvoice&newitemdescription%5B0%5D=A&newitemdescription[1]=B&itemamount[13]=1.00&d[]=x&d[]=y",
        );
        assert_eq!(f.get("action"), Some("UpdateInvoice"));
        let descriptions = f.array("newitemdescription").unwrap();
        assert_eq!(pairs(descriptions), vec![("0", "A"), ("1", "B")]);
        assert_eq!(pairs(f.array("itemamount").unwrap()), vec![("13", "1.00")]);
        assert_eq!(pairs(f.array("d").unwrap()), vec![("0", "x"), ("1", "y")]);
    }

    #[test]
    fn php_array_semantics() {
        let f = Form::parse(b"a[5]=x&a[]=y&a[5]=z&b[k][j]=1&c[=2&[0]=3&my.key=4&flag=false&off=0");
        assert_eq!(pairs(f.array("a").unwrap()), vec![("5", "z"), ("6", "y")]);
        assert_eq!(pairs(f.array("b").unwrap()), vec![("k", "1")]);
        assert_eq!(f.raw("c_"), Some("2"));
        assert_eq!(f.raw("my_key"), Some("4"));
        assert!(f.flag("flag") && !f.flag("off") && !f.flag("absent"));
        assert_eq!(f.arrays.len(), 2);
    }
}
