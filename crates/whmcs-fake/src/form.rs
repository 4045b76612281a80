//! `application/x-www-form-urlencoded` bodies as PHP reads them: `a[0]`,
//! `a[13]` and `a[]` keys (brackets possibly percent-encoded, which form
//! decoding undoes) become indexed arrays; everything else is a scalar.

use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Form {
    pub scalars: BTreeMap<String, String>,
    /// `name → [(index, value)]` in the order received.
    pub arrays: BTreeMap<String, Vec<(String, String)>>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        let mut form = Form::default();
        for (k, v) in form_urlencoded::parse(body) {
            match k.find('[') {
                Some(open) if k.ends_with(']') => {
                    let name = k[..open].to_owned();
                    let index = k[open + 1..k.len() - 1].to_owned();
                    let list = form.arrays.entry(name).or_default();
                    let index = if index.is_empty() {
                        list.len().to_string()
                    } else {
                        index
                    };
                    list.push((index, v.into_owned()));
                }
                _ => {
                    form.scalars.insert(k.into_owned(), v.into_owned());
                }
            }
        }
        form
    }

    /// A scalar, `None` when absent or empty (PHP's `empty()` view).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.scalars.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn array(&self, key: &str) -> &[(String, String)] {
        self.arrays.get(key).map_or(&[], Vec::as_slice)
    }

    /// PHP truthiness of a flag (`1`, `true`, `on`, `yes`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "on" | "yes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_bracket_keys() {
        let f = Form::parse(
            b"action=UpdateInvoice&newitemdescription%5B0%5D=A&newitemdescription[1]=B&itemamount[13]=1.00&d[]=x&d[]=y",
        );
        assert_eq!(f.get("action"), Some("UpdateInvoice"));
        assert_eq!(
            f.array("newitemdescription"),
            &[("0".into(), "A".into()), ("1".into(), "B".into())]
        );
        assert_eq!(f.array("itemamount"), &[("13".into(), "1.00".into())]);
        assert_eq!(f.array("d"), &[("0".into(), "x".into()), ("1".into(), "y".into())]);
    }
}
