//! Query-string and form-body parameters.
//!
//! Parsed with `form_urlencoded` rather than axum's `Query` and `Form` extractors, so the module
//! needs no axum features beyond the ones the service already enables, and so a duplicate or
//! malformed parameter never turns into axum's own plain-text rejection.

/// Decoded `name=value` pairs in the order they were sent.
#[derive(Clone, Debug, Default)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_query(raw_query: Option<&str>) -> Self {
        Self::from_bytes(raw_query.unwrap_or_default().as_bytes())
    }

    pub fn from_bytes(encoded: &[u8]) -> Self {
        Self(form_urlencoded::parse(encoded).into_owned().collect())
    }

    /// Appends `other` after these pairs, so `get` prefers values from `self`.
    pub fn chain(mut self, other: Params) -> Self {
        self.0.extend(other.0);
        self
    }

    /// Returns the first value sent for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Encodes the pairs with `name` set to `value`: the first `name` pair is replaced in place,
    /// later duplicates and every `remove` pair are dropped, and `name` is appended if absent.
    pub fn encode_with(&self, name: &str, value: &str, remove: &str) -> String {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        let mut replaced = false;
        for (key, existing) in &self.0 {
            if key == remove {
                continue;
            }
            if key == name {
                if !replaced {
                    serializer.append_pair(name, value);
                    replaced = true;
                }
                continue;
            }
            serializer.append_pair(key, existing);
        }
        if !replaced {
            serializer.append_pair(name, value);
        }
        serializer.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_get_returns_first_value() {
        let params = Params::from_query(Some("a=1&b=x%20y&a=2"));
        assert_eq!(params.get("a"), Some("1"), "first duplicate wins");
        assert_eq!(params.get("b"), Some("x y"), "value is decoded");
        assert_eq!(params.get("c"), None, "absent name");
    }

    #[test]
    fn params_encode_with_replaces_in_place() {
        let params = Params::from_query(Some("access_token=t&after=old&limit=2&before=b"));
        assert_eq!(
            params.encode_with("after", "new", "before"),
            "access_token=t&after=new&limit=2"
        );
    }

    #[test]
    fn params_encode_with_appends_when_absent() {
        let params = Params::from_query(Some("limit=2"));
        assert_eq!(
            params.encode_with("after", "c", "before"),
            "limit=2&after=c"
        );
    }
}
