// Json: a small JSON value, enough for checkpoint headers (nn/safetensors.h) and metrics logs.
//
// A value is one of: null, bool, integer, number, string, array, object (RFC 8259).
//   - Numbers written without a fraction or exponent ("42", "-7") are kept as exact int64, so byte
//     offsets and step counts never pass through a double; anything else ("0.5", "1e3") is a double.
//     is_int() tells them apart; as_double() accepts both.
//   - Objects keep their keys sorted (std::map), so dump() is deterministic: the same value always
//     gives the same bytes, whatever order it was built in.
//
//   Json j = Json::parse(R"({"step": 10, "loss": 0.25, "tags": ["a", "b"]})");
//   j["step"].as_int64();            // 10
//   j["tags"][1].as_string();        // "b"
//   Json m = Json::object();
//   m.set("lr", 3e-4).set("epoch", 2);
//   m.dump();                        // {"epoch":2,"lr":0.0003}
//
// parse() is strict, because a checkpoint header may come from anywhere: it rejects trailing
// garbage, raw control characters in strings, bad escapes, lone UTF-16 surrogates, invalid UTF-8,
// duplicate keys, NaN/Infinity, leading zeros and nesting deeper than 64, each with
//   json: <problem> at offset N
// where N is the byte offset in the text.
#pragma once
#include <concepts>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace glance::nn {

class Json {
 public:
  using Array = std::vector<Json>;
  using Object = std::map<std::string, Json>;
  enum class Type { Null, Bool, Int, Double, String, Array, Object };

  static constexpr int kMaxDepth = 64;  // arrays/objects nested deeper than this are rejected

  // ---- construction ----
  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool value) : value_(value) {}
  // Any integer type except bool; an unsigned value above INT64_MAX throws.
  template <std::integral T>
    requires(!std::same_as<T, bool>)
  Json(T value) : value_(checked_int64(value)) {}
  Json(double value) : value_(value) {}
  Json(const char* value) : value_(std::string(value)) {}
  Json(std::string value) : value_(std::move(value)) {}
  Json(std::string_view value) : value_(std::string(value)) {}
  Json(Array value) : value_(std::move(value)) {}
  Json(Object value) : value_(std::move(value)) {}

  static Json array() { return Json(Array{}); }
  static Json object() { return Json(Object{}); }

  // Builders; they return *this so calls chain. push_back needs an array, set an object.
  Json& push_back(Json value);
  Json& set(const std::string& key, Json value);  // replaces an existing key

  // ---- parsing and printing ----
  static Json parse(std::string_view text);
  // Compact (no spaces), keys sorted, strings escaped, doubles in the shortest form that reads back
  // to the same double. JSON has no NaN or Infinity: like JavaScript's JSON.stringify, they print
  // as null. Throws if a string is not valid UTF-8 (the output would not be JSON).
  std::string dump() const;

  // ---- type tests ----
  Type type() const { return static_cast<Type>(value_.index()); }
  bool is_null() const { return type() == Type::Null; }
  bool is_bool() const { return type() == Type::Bool; }
  bool is_int() const { return type() == Type::Int; }
  bool is_double() const { return type() == Type::Double; }
  bool is_number() const { return is_int() || is_double(); }
  bool is_string() const { return type() == Type::String; }
  bool is_array() const { return type() == Type::Array; }
  bool is_object() const { return type() == Type::Object; }
  static const char* type_name(Type type);  // "null", "bool", "integer", "number", ...

  // ---- accessors: each throws "json: expected <type>, got <type>" on a mismatch ----
  bool as_bool() const;
  int64_t as_int64() const;  // integers only: 2.5 and 2.0 both throw
  double as_double() const;  // integers convert
  const std::string& as_string() const;
  const Array& as_array() const;
  const Object& as_object() const;

  // Objects: the value of `key` (throws naming the key if it is missing); arrays: element i
  // (throws if out of range). find() returns nullptr instead of throwing.
  const Json& operator[](const std::string& key) const;
  const Json& operator[](size_t index) const;
  const Json* find(const std::string& key) const;
  bool contains(const std::string& key) const { return find(key) != nullptr; }
  size_t size() const;  // elements of an array, keys of an object

  bool operator==(const Json& other) const;

 private:
  template <std::integral T>
  static int64_t checked_int64(T value) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(int64_t)) {
      if (value > static_cast<T>(INT64_MAX)) throw std::out_of_range("json: integer too large for int64");
    }
    return static_cast<int64_t>(value);
  }
  [[noreturn]] void type_error(Type expected) const;

  // The alternatives are in the order of Type, so value_.index() is the Type.
  std::variant<std::nullptr_t, bool, int64_t, double, std::string, Array, Object> value_;
};

}  // namespace glance::nn
