// Json: a recursive-descent parser over the RFC 8259 grammar, and a printer.
//
//   value  = object | array | string | number | "true" | "false" | "null"
//   object = "{" [ string ":" value *( "," string ":" value ) ] "}"
//   array  = "[" [ value *( "," value ) ] "]"
//   number = [ "-" ] ( "0" | [1-9] digit* ) [ "." digit+ ] [ ( "e" | "E" ) [ "+" | "-" ] digit+ ]
//   whitespace between tokens: space, tab, newline, carriage return (nothing else)
#include "nn/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace glance::nn {

// ================================================================================================
// Parsing
// ================================================================================================
namespace {

// The length (1 to 4) of the valid UTF-8 sequence that starts at s[i], or 0 if there is none.
// Valid means RFC 3629: no overlong forms, no UTF-16 surrogates (U+D800-DFFF), nothing past U+10FFFF.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  unsigned char lead = static_cast<unsigned char>(s[i]);
  if (lead < 0x80) return 1;
  size_t extra;
  uint32_t code;
  if (lead >= 0xC2 && lead <= 0xDF) { extra = 1; code = lead & 0x1F; }       // 110xxxxx 10xxxxxx
  else if (lead >= 0xE0 && lead <= 0xEF) { extra = 2; code = lead & 0x0F; }  // 1110xxxx + 2
  else if (lead >= 0xF0 && lead <= 0xF4) { extra = 3; code = lead & 0x07; }  // 11110xxx + 3
  else return 0;  // a continuation byte, or a lead byte that can only start an invalid sequence
  if (i + extra >= s.size()) return 0;
  for (size_t k = 1; k <= extra; ++k) {
    unsigned char c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    code = (code << 6) | (c & 0x3F);
  }
  if ((extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000)) return 0;  // overlong
  if ((code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) return 0;
  return extra + 1;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Json parse_document() {
    Json value = parse_value(0);
    skip_whitespace();
    if (pos_ != text_.size()) fail("unexpected trailing characters");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const { fail_at(problem, pos_); }
  [[noreturn]] void fail_at(const std::string& problem, size_t offset) const {
    throw std::runtime_error("json: " + problem + " at offset " + std::to_string(offset));
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_whitespace() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  void expect(char c, const char* what) {
    if (at_end()) fail(std::string("unexpected end of input, expected ") + what);
    if (peek() != c) fail(std::string("expected ") + what);
    ++pos_;
  }

  Json parse_value(int depth) {
    skip_whitespace();
    if (at_end()) fail("unexpected end of input, expected a value");
    char c = peek();
    if (c == '{' || c == '[') {
      if (depth + 1 > Json::kMaxDepth) fail("nesting deeper than " + std::to_string(Json::kMaxDepth));
      return c == '{' ? parse_object(depth + 1) : parse_array(depth + 1);
    }
    if (c == '"') return Json(parse_string());
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    if (text_.substr(pos_, 4) == "true") { pos_ += 4; return Json(true); }
    if (text_.substr(pos_, 5) == "false") { pos_ += 5; return Json(false); }
    if (text_.substr(pos_, 4) == "null") { pos_ += 4; return Json(); }
    fail(std::string("unexpected character '") + printable(c) + "'");
  }

  static std::string printable(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
    return buf;
  }

  Json parse_object(int depth) {
    ++pos_;  // '{'
    Json::Object object;
    skip_whitespace();
    if (peek() == '}') { ++pos_; return Json(std::move(object)); }
    while (true) {
      skip_whitespace();
      size_t key_offset = pos_;
      if (peek() != '"') fail(at_end() ? "unexpected end of input, expected a key" : "expected a string key");
      std::string key = parse_string();
      // Duplicate keys are legal in RFC 8259 but mean different things to different readers (first
      // wins? last wins?), so a header with one is ambiguous: reject it, as safetensors does.
      if (object.count(key)) fail_at("duplicate key \"" + key + "\"", key_offset);
      skip_whitespace();
      expect(':', "':' after a key");
      Json value = parse_value(depth);
      object.emplace(std::move(key), std::move(value));
      skip_whitespace();
      if (peek() == ',') { ++pos_; continue; }
      expect('}', "',' or '}' in an object");
      return Json(std::move(object));
    }
  }

  Json parse_array(int depth) {
    ++pos_;  // '['
    Json::Array array;
    skip_whitespace();
    if (peek() == ']') { ++pos_; return Json(std::move(array)); }
    while (true) {
      array.push_back(parse_value(depth));
      skip_whitespace();
      if (peek() == ',') { ++pos_; continue; }
      expect(']', "',' or ']' in an array");
      return Json(std::move(array));
    }
  }

  Json parse_number() {
    size_t start = pos_;
    auto digits = [&] {
      size_t first = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ - first;
    };
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
      if (peek() >= '0' && peek() <= '9') fail("leading zero in a number");
    } else if (digits() == 0) {
      fail("expected a digit");
    }
    bool integral = true;
    if (peek() == '.') {
      ++pos_;
      integral = false;
      if (digits() == 0) fail("expected a digit after '.'");
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      integral = false;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (digits() == 0) fail("expected a digit in the exponent");
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (integral) {
      int64_t value = 0;
      auto [end, ec] = std::from_chars(first, last, value);
      if (ec == std::errc() && end == last) return Json(value);
      // Too big for int64: fall through and keep it as a double, as JavaScript would.
    }
    // Doubles too large (1e400) or too small (1e-400) to represent are rejected rather than turned
    // into infinity or zero behind the reader's back.
    double value = 0;
    auto [end, ec] = std::from_chars(first, last, value);
    if (ec != std::errc() || end != last) fail_at("number out of range for a double", start);
    return Json(value);
  }

  // Reads four hex digits of a \uXXXX escape.
  uint32_t parse_hex4() {
    uint32_t code = 0;
    for (int i = 0; i < 4; ++i) {
      if (at_end()) fail("unexpected end of input in a \\u escape");
      char c = text_[pos_];
      uint32_t digit;
      if (c >= '0' && c <= '9') digit = c - '0';
      else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      else fail("bad hex digit in a \\u escape");
      code = code * 16 + digit;
      ++pos_;
    }
    return code;
  }

  static void append_utf8(std::string& out, uint32_t code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  // A code point outside the Basic Multilingual Plane is written in JSON as a UTF-16 surrogate pair,
  // "\ud83d\ude00" for U+1F600: a high surrogate (D800-DBFF) then a low one (DC00-DFFF).
  uint32_t parse_unicode_escape() {
    size_t escape_offset = pos_ - 2;  // at the backslash
    uint32_t code = parse_hex4();
    if (code >= 0xDC00 && code <= 0xDFFF) fail_at("lone low surrogate in a \\u escape", escape_offset);
    if (code >= 0xD800 && code <= 0xDBFF) {
      if (text_.substr(pos_, 2) != "\\u") fail_at("high surrogate not followed by a low one", escape_offset);
      pos_ += 2;
      uint32_t low = parse_hex4();
      if (low < 0xDC00 || low > 0xDFFF) fail_at("high surrogate not followed by a low one", escape_offset);
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    return code;
  }

  std::string parse_string() {
    size_t start = pos_;
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (at_end()) fail_at("unterminated string", start);
      char c = text_[pos_];
      unsigned char u = static_cast<unsigned char>(c);
      if (c == '"') { ++pos_; return out; }
      if (u < 0x20) fail("raw control character in a string (must be escaped)");
      if (u >= 0x80) {
        size_t n = utf8_sequence_length(text_, pos_);
        if (n == 0) fail("invalid UTF-8");
        out.append(text_.substr(pos_, n));
        pos_ += n;
        continue;
      }
      if (c != '\\') { out += c; ++pos_; continue; }
      // An escape.
      ++pos_;
      if (at_end()) fail_at("unterminated string", start);
      char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': append_utf8(out, parse_unicode_escape()); break;
        default: fail_at(std::string("bad escape '\\") + printable(e) + "'", pos_ - 2);
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

Json Json::parse(std::string_view text) { return Parser(text).parse_document(); }

// ================================================================================================
// Printing
// ================================================================================================
namespace {

// Quotes and escapes a string: '"' and '\\' get a backslash, control characters become \n, \t, ...
// or \u00XX, and everything else (UTF-8 included) is copied as is, after a validity check.
void dump_string(const std::string& s, std::string& out) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence_length(s, i);
    if (n == 0) throw std::runtime_error("json: cannot dump a string that is not valid UTF-8 (byte " + std::to_string(i) + ")");
    i += n;
  }
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// The shortest text that parses back to exactly this double (std::to_chars guarantees the round
// trip), with ".0" added when it would otherwise read back as an integer: 2.0 prints "2.0", not "2".
void dump_double(double d, std::string& out) {
  if (!std::isfinite(d)) { out += "null"; return; }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string text(buf, end);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  out += text;
}

void dump_value(const Json& j, std::string& out) {
  switch (j.type()) {
    case Json::Type::Null: out += "null"; break;
    case Json::Type::Bool: out += j.as_bool() ? "true" : "false"; break;
    case Json::Type::Int: out += std::to_string(j.as_int64()); break;
    case Json::Type::Double: dump_double(j.as_double(), out); break;
    case Json::Type::String: dump_string(j.as_string(), out); break;
    case Json::Type::Array: {
      out += '[';
      bool first = true;
      for (const Json& v : j.as_array()) {
        if (!first) out += ',';
        first = false;
        dump_value(v, out);
      }
      out += ']';
      break;
    }
    case Json::Type::Object: {
      out += '{';
      bool first = true;
      for (const auto& [k, v] : j.as_object()) {
        if (!first) out += ',';
        first = false;
        dump_string(k, out);
        out += ':';
        dump_value(v, out);
      }
      out += '}';
      break;
    }
  }
}

}  // namespace

std::string Json::dump() const {
  std::string out;
  dump_value(*this, out);
  return out;
}

// ================================================================================================
// Accessors and builders
// ================================================================================================
const char* Json::type_name(Type type) {
  switch (type) {
    case Type::Null: return "null";
    case Type::Bool: return "bool";
    case Type::Int: return "integer";
    case Type::Double: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

void Json::type_error(Type expected) const {
  throw std::runtime_error(std::string("json: expected ") + type_name(expected) + ", got " + type_name(type()));
}

bool Json::as_bool() const {
  if (!is_bool()) type_error(Type::Bool);
  return std::get<bool>(value_);
}

int64_t Json::as_int64() const {
  if (!is_int()) type_error(Type::Int);
  return std::get<int64_t>(value_);
}

double Json::as_double() const {
  if (is_int()) return static_cast<double>(std::get<int64_t>(value_));
  if (!is_double()) type_error(Type::Double);
  return std::get<double>(value_);
}

const std::string& Json::as_string() const {
  if (!is_string()) type_error(Type::String);
  return std::get<std::string>(value_);
}

const Json::Array& Json::as_array() const {
  if (!is_array()) type_error(Type::Array);
  return std::get<Array>(value_);
}

const Json::Object& Json::as_object() const {
  if (!is_object()) type_error(Type::Object);
  return std::get<Object>(value_);
}

const Json* Json::find(const std::string& key) const {
  const Object& object = as_object();
  auto it = object.find(key);
  return it == object.end() ? nullptr : &it->second;
}

const Json& Json::operator[](const std::string& key) const {
  const Json* value = find(key);
  if (!value) throw std::runtime_error("json: no key \"" + key + "\" in the object");
  return *value;
}

const Json& Json::operator[](size_t index) const {
  const Array& array = as_array();
  if (index >= array.size()) {
    throw std::runtime_error("json: index " + std::to_string(index) + " is out of range for an array of " +
                             std::to_string(array.size()));
  }
  return array[index];
}

size_t Json::size() const {
  if (is_array()) return std::get<Array>(value_).size();
  if (is_object()) return std::get<Object>(value_).size();
  throw std::runtime_error(std::string("json: size() needs an array or an object, got ") + type_name(type()));
}

Json& Json::push_back(Json value) {
  if (!is_array()) type_error(Type::Array);
  std::get<Array>(value_).push_back(std::move(value));
  return *this;
}

Json& Json::set(const std::string& key, Json value) {
  if (!is_object()) type_error(Type::Object);
  std::get<Object>(value_).insert_or_assign(key, std::move(value));
  return *this;
}

bool Json::operator==(const Json& other) const { return value_ == other.value_; }

}  // namespace glance::nn
