//! The signed-in user: the `user` cookie and the sign-in form.

use http::HeaderMap;
use http::header::COOKIE;

/// The cookie that remembers who signed in.
const USER_COOKIE: &str = "user";

/// The signed-in user named by the request's `user` cookie, if any.
pub(crate) fn user(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == USER_COOKIE)
        .map(|(_, value)| percent_decode(value.trim_matches('"')))
        .filter(|user| !user.is_empty())
}

/// `Set-Cookie` that signs `user` in.
pub(crate) fn sign_in_cookie(user: &str) -> String {
    format!(
        "{USER_COOKIE}={}; Path=/; SameSite=Lax",
        percent_encode(user)
    )
}

/// `Set-Cookie` that signs out.
pub(crate) fn sign_out_cookie() -> String {
    format!(
        "{USER_COOKIE}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax"
    )
}

/// The value of field `name` in an `application/x-www-form-urlencoded` body.
pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| form_decode(key) == name)
        .map(|(_, value)| form_decode(value))
}

fn form_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// Decode `%XX` escapes; malformed escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escape everything outside the unreserved URL characters, so any name fits
/// in a cookie value.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn reads_the_user_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("session=abc; user=jason"));
        assert_eq!(user(&headers).as_deref(), Some("jason"));

        headers.clear();
        headers.append(COOKIE, HeaderValue::from_static("a=1"));
        headers.append(COOKIE, HeaderValue::from_static("user=j%C3%B6rg%20k"));
        assert_eq!(user(&headers).as_deref(), Some("jörg k"));

        headers.clear();
        headers.append(COOKIE, HeaderValue::from_static("user="));
        assert_eq!(user(&headers), None);
    }

    #[test]
    fn cookie_round_trips_any_name() {
        for name in ["jason", "jörg k", "a;b=c", "\"quoted\""] {
            let set = sign_in_cookie(name);
            let value = set.split(';').next().unwrap();
            let mut headers = HeaderMap::new();
            headers.insert(COOKIE, HeaderValue::from_str(value).unwrap());
            assert_eq!(user(&headers).as_deref(), Some(name));
        }
    }

    #[test]
    fn parses_form_fields() {
        let body = b"username=jason+b%26c&passwd=&flag";
        assert_eq!(form_field(body, "username").as_deref(), Some("jason b&c"));
        assert_eq!(form_field(body, "passwd").as_deref(), Some(""));
        assert_eq!(form_field(body, "flag").as_deref(), Some(""));
        assert_eq!(form_field(body, "missing"), None);
    }
}
