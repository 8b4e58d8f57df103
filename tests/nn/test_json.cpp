// Json: values, escapes, unicode and number round trips, the exact compact output, and every kind of
// malformed input rejected with its problem and byte offset. Expected texts are written out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>

#include "nn/json.h"

namespace {

using glance::nn::Json;

// Expects parse(text) to throw a message containing `problem` and, if given, "at offset N".
void expect_parse_error(const std::string& text, const std::string& problem, int offset = -1) {
  try {
    Json::parse(text);
    ADD_FAILURE() << "parse accepted " << text;
  } catch (const std::runtime_error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("json: "), std::string::npos) << message;
    EXPECT_NE(message.find(problem), std::string::npos) << "text: " << text << "\nmessage: " << message;
    if (offset >= 0) {
      EXPECT_NE(message.find("at offset " + std::to_string(offset)), std::string::npos) << message;
    }
  }
}

void expect_error(const std::function<void()>& f, const std::string& problem) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one containing: " << problem;
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(problem), std::string::npos) << e.what();
  }
}

uint64_t bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}

TEST(Json, ParsesScalars) {
  EXPECT_TRUE(Json::parse("null").is_null());
  EXPECT_EQ(Json::parse("true").as_bool(), true);
  EXPECT_EQ(Json::parse(" false ").as_bool(), false);
  EXPECT_EQ(Json::parse("\"hi\"").as_string(), "hi");
  EXPECT_EQ(Json::parse("\t\r\n 42 \n").as_int64(), 42);
}

TEST(Json, IntegersStayExactAndOtherNumbersAreDoubles) {
  Json big = Json::parse("9223372036854775807");
  ASSERT_TRUE(big.is_int());
  EXPECT_EQ(big.as_int64(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(Json::parse("-9223372036854775808").as_int64(), std::numeric_limits<int64_t>::min());
  // 2^53 + 1 is not a double; kept as an integer it survives.
  EXPECT_EQ(Json::parse("9007199254740993").as_int64(), 9007199254740993LL);
  EXPECT_EQ(Json::parse("-0").as_int64(), 0);
  // Too big for int64: a double.
  Json huge = Json::parse("9223372036854775808");
  EXPECT_TRUE(huge.is_double());
  EXPECT_EQ(huge.as_double(), 9223372036854775808.0);
  // A fraction or exponent makes a double, even when the value is whole.
  EXPECT_TRUE(Json::parse("2.0").is_double());
  EXPECT_TRUE(Json::parse("1e3").is_double());
  EXPECT_EQ(Json::parse("1e3").as_double(), 1000.0);
  EXPECT_EQ(Json::parse("-1.5E+2").as_double(), -150.0);
  EXPECT_EQ(Json::parse("25e-2").as_double(), 0.25);
  EXPECT_EQ(Json::parse("0.5").as_double(), 0.5);
  EXPECT_EQ(Json::parse("7").as_double(), 7.0);  // integers convert to double on request
  EXPECT_TRUE(Json::parse("7").is_number());
}

TEST(Json, ParsesNestedValues) {
  Json j = Json::parse(R"( {"a": [1, 2.5, "x", null, true, {"b": []}], "c": {}} )");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 2u);
  EXPECT_TRUE(j.contains("a"));
  EXPECT_FALSE(j.contains("b"));
  const Json& a = j["a"];
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a[0].as_int64(), 1);
  EXPECT_EQ(a[1].as_double(), 2.5);
  EXPECT_EQ(a[2].as_string(), "x");
  EXPECT_TRUE(a[3].is_null());
  EXPECT_TRUE(a[4].as_bool());
  EXPECT_EQ(a[5]["b"].size(), 0u);
  EXPECT_EQ(j["c"].size(), 0u);
  EXPECT_EQ(j.find("zzz"), nullptr);
}

TEST(Json, Escapes) {
  EXPECT_EQ(Json::parse(R"("\"\\\/\b\f\n\r\t")").as_string(), "\"\\/\b\f\n\r\t");
  // dump: '"' and '\' get a backslash, the usual control characters their short form, the rest \u00XX;
  // '/' needs no escape.
  std::string s = "q\"b\\s/\b\f\n\r\t";
  s += '\x01';
  s += '\x1f';
  s += '\x7f';
  EXPECT_EQ(Json(s).dump(), R"("q\"b\\s/\b\f\n\r\t\u0001\u001f)" "\x7f\"");
  EXPECT_EQ(Json::parse(Json(s).dump()).as_string(), s);
  std::string with_nul("a\0b", 3);
  EXPECT_EQ(Json(with_nul).dump(), R"("a\u0000b")");
  EXPECT_EQ(Json::parse(R"("a\u0000b")").as_string(), with_nul);
}

TEST(Json, Unicode) {
  EXPECT_EQ(Json::parse(R"("\u0041")").as_string(), "A");
  EXPECT_EQ(Json::parse(R"("\u00e9")").as_string(), "\xc3\xa9");           // é
  EXPECT_EQ(Json::parse(R"("\u20AC")").as_string(), "\xe2\x82\xac");       // €
  EXPECT_EQ(Json::parse(R"("\ud83d\ude00")").as_string(), "\xf0\x9f\x98\x80");  // U+1F600 from a surrogate pair
  EXPECT_EQ(Json::parse(R"("\uDBFF\uDFFF")").as_string(), "\xf4\x8f\xbf\xbf");  // U+10FFFF, the last code point
  // Raw UTF-8 passes through parse and dump untouched.
  std::string raw = "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"";
  EXPECT_EQ(Json::parse(raw).dump(), raw);
  // A string that is not UTF-8 cannot be written as JSON.
  expect_error([] { Json(std::string("bad \xff byte")).dump(); }, "not valid UTF-8");
  expect_error([] { Json(std::string("\xed\xa0\x80")).dump(); }, "not valid UTF-8");  // an encoded surrogate
}

TEST(Json, DumpIsCompactSortedAndDeterministic) {
  Json a = Json::object();
  a.set("zeta", 1).set("alpha", Json::array().push_back(true).push_back(nullptr).push_back("s")).set("mid", 0.5);
  Json b = Json::object();
  b.set("mid", 0.5).set("alpha", Json::array().push_back(true).push_back(nullptr).push_back("s")).set("zeta", 1);
  EXPECT_EQ(a.dump(), R"({"alpha":[true,null,"s"],"mid":0.5,"zeta":1})");
  EXPECT_EQ(a.dump(), b.dump());
  EXPECT_TRUE(a == b);
  EXPECT_EQ(Json().dump(), "null");
  EXPECT_EQ(Json::array().dump(), "[]");
  EXPECT_EQ(Json::object().dump(), "{}");
  EXPECT_EQ(Json(-12).dump(), "-12");
  EXPECT_EQ(Json(std::numeric_limits<int64_t>::min()).dump(), "-9223372036854775808");
  // set replaces an existing key.
  a.set("zeta", "two");
  EXPECT_EQ(a["zeta"].as_string(), "two");
  EXPECT_EQ(a.size(), 3u);
}

TEST(Json, DoublesRoundTripBitExact) {
  EXPECT_EQ(Json(0.1).dump(), "0.1");
  EXPECT_EQ(Json(2.0).dump(), "2.0");  // stays a double when read back
  EXPECT_EQ(Json(-0.0).dump(), "-0.0");
  EXPECT_EQ(Json(1e300).dump(), "1e+300");
  EXPECT_EQ(Json(1.5e-7).dump(), "1.5e-07");
  const double values[] = {0.1, 1.0 / 3.0, -2.0 / 7.0, 5e-324, 2.2250738585072014e-308,
                           std::numeric_limits<double>::max(), -0.0, 123456789.123456789, 3e-4, 1e22, 2.0};
  for (double v : values) {
    Json back = Json::parse(Json(v).dump());
    ASSERT_TRUE(back.is_double()) << Json(v).dump();
    EXPECT_EQ(bits(back.as_double()), bits(v)) << Json(v).dump();
  }
  // JSON has no NaN or Infinity; like JSON.stringify, they print as null.
  EXPECT_EQ(Json(std::nan("")).dump(), "null");
  EXPECT_EQ(Json(-std::numeric_limits<double>::infinity()).dump(), "null");
}

TEST(Json, ValuesRoundTripThroughText) {
  const char* texts[] = {
      R"({"a":{"b":{"c":[1,-2,3.5,"x\ny",false,null]}},"config":"{\"dim\":64}","empty":""})",
      R"([[],{},[[]],"\u0001",0,-0.0,1e+300])",
      R"("just a string")",
  };
  for (const char* text : texts) {
    Json j = Json::parse(text);
    EXPECT_EQ(j.dump(), text);  // these texts are already canonical
    EXPECT_TRUE(Json::parse(j.dump()) == j);
  }
  // Non-canonical input gives canonical output.
  EXPECT_EQ(Json::parse(" { \"b\" : 1 , \"a\" : [ 1 , 2 ] } ").dump(), R"({"a":[1,2],"b":1})");
  EXPECT_EQ(Json::parse(R"("\u00e9\/")").dump(), "\"\xc3\xa9/\"");
}

TEST(Json, ConstructsFromCppTypes) {
  EXPECT_TRUE(Json(3).is_int());
  EXPECT_TRUE(Json(int64_t{3}).is_int());
  EXPECT_TRUE(Json(uint64_t{3}).is_int());
  EXPECT_TRUE(Json(size_t{3}).is_int());
  EXPECT_TRUE(Json(3.0).is_double());
  EXPECT_TRUE(Json(3.0f).is_double());
  EXPECT_TRUE(Json(true).is_bool());
  EXPECT_TRUE(Json("text").is_string());
  EXPECT_TRUE(Json(std::string("text")).is_string());
  EXPECT_TRUE(Json(nullptr).is_null());
  EXPECT_THROW(Json(std::numeric_limits<uint64_t>::max()), std::out_of_range);
}

TEST(Json, AccessorsNameTheExpectedType) {
  Json j = Json::parse(R"({"n": 2.5, "s": "x", "a": [1]})");
  expect_error([&] { j["n"].as_int64(); }, "json: expected integer, got number");
  expect_error([&] { j["s"].as_double(); }, "json: expected number, got string");
  expect_error([&] { j["n"].as_string(); }, "json: expected string, got number");
  expect_error([&] { j["a"].as_object(); }, "json: expected object, got array");
  expect_error([&] { j.as_array(); }, "json: expected array, got object");
  expect_error([&] { j["s"].as_bool(); }, "json: expected bool, got string");
  expect_error([&] { j["missing"]; }, "no key \"missing\"");
  expect_error([&] { j["a"][1]; }, "index 1 is out of range for an array of 1");
  expect_error([&] { j["s"]["k"]; }, "expected object, got string");
  expect_error([&] { j["n"].size(); }, "size() needs an array or an object, got number");
  Json arr = Json::array();
  expect_error([&] { arr.set("k", 1); }, "expected object, got array");
  Json obj = Json::object();
  expect_error([&] { obj.push_back(1); }, "expected array, got object");
}

TEST(Json, MalformedInputIsRejectedWithProblemAndOffset) {
  expect_parse_error("", "unexpected end of input", 0);
  expect_parse_error("   ", "unexpected end of input", 3);
  expect_parse_error("{} x", "unexpected trailing characters", 3);
  expect_parse_error("1 2", "unexpected trailing characters", 2);
  expect_parse_error("\"abc", "unterminated string", 0);
  expect_parse_error("[\"abc\\", "unterminated string", 1);
  expect_parse_error("\"a\\qb\"", "bad escape '\\q'", 2);
  expect_parse_error("\"a\\x41\"", "bad escape '\\x'", 2);
  expect_parse_error("\"\\u12G4\"", "bad hex digit in a \\u escape", 5);
  expect_parse_error("\"\\u12\"", "bad hex digit in a \\u escape", 5);
  expect_parse_error("\"\\u12", "unexpected end of input in a \\u escape", 5);
  expect_parse_error("\"\\ud83d\"", "high surrogate not followed by a low one", 1);
  expect_parse_error("\"\\ud83dx\"", "high surrogate not followed by a low one", 1);
  expect_parse_error("\"\\ud83d\\u0041\"", "high surrogate not followed by a low one", 1);
  expect_parse_error("\"\\ude00\"", "lone low surrogate", 1);
  expect_parse_error("\"a\x01" "b\"", "raw control character in a string", 2);
  expect_parse_error("\"a\nb\"", "raw control character in a string", 2);
  expect_parse_error("\"\xff\"", "invalid UTF-8", 1);
  expect_parse_error("\"\xc3\"", "invalid UTF-8", 1);              // truncated sequence
  expect_parse_error("\"\xc0\xaf\"", "invalid UTF-8", 1);          // overlong '/'
  expect_parse_error("\"\xe0\x80\xaf\"", "invalid UTF-8", 1);      // overlong, 3 bytes
  expect_parse_error("\"\xed\xa0\x80\"", "invalid UTF-8", 1);      // a surrogate encoded in UTF-8
  expect_parse_error("\"\xf4\x90\x80\x80\"", "invalid UTF-8", 1);  // past U+10FFFF
  expect_parse_error("\"\x80\"", "invalid UTF-8", 1);              // a lone continuation byte
  expect_parse_error(R"({"a":1,"a":2})", "duplicate key \"a\"", 7);
  expect_parse_error("[1,2", "unexpected end of input, expected ',' or ']'", 4);
  expect_parse_error("[1 2]", "expected ',' or ']' in an array", 3);
  expect_parse_error("[1,]", "unexpected character ']'", 3);
  expect_parse_error("{\"a\" 1}", "expected ':' after a key", 5);
  expect_parse_error("{1:2}", "expected a string key", 1);
  expect_parse_error("{\"a\":1,}", "expected a string key", 7);
  expect_parse_error("{\"a\":1", "unexpected end of input, expected ',' or '}'", 6);
  expect_parse_error("{", "unexpected end of input, expected a key", 1);
  expect_parse_error("01", "leading zero in a number", 1);
  expect_parse_error("-01", "leading zero in a number", 2);
  expect_parse_error("-", "expected a digit", 1);
  expect_parse_error("1.", "expected a digit after '.'", 2);
  expect_parse_error("1.e5", "expected a digit after '.'", 2);
  expect_parse_error("1e", "expected a digit in the exponent", 2);
  expect_parse_error("1e+", "expected a digit in the exponent", 3);
  expect_parse_error(".5", "unexpected character '.'", 0);
  expect_parse_error("+1", "unexpected character '+'", 0);
  expect_parse_error("NaN", "unexpected character 'N'", 0);
  expect_parse_error("-Infinity", "expected a digit", 1);
  expect_parse_error("tru", "unexpected character 't'", 0);
  expect_parse_error("nul", "unexpected character 'n'", 0);
  expect_parse_error("truex", "unexpected trailing characters", 4);
  expect_parse_error("'a'", "unexpected character '''", 0);
  expect_parse_error("\v1", "unexpected character '\\x0b'", 0);  // vertical tab is not JSON whitespace
  expect_parse_error("1e400", "number out of range for a double", 0);
  expect_parse_error("[-1e400]", "number out of range for a double", 1);
}

TEST(Json, NestingDeeperThan64IsRejected) {
  std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_EQ(Json::parse(ok).dump(), ok);
  std::string deep = std::string(65, '[') + std::string(65, ']');
  expect_parse_error(deep, "nesting deeper than 64", 64);
  std::string deep_objects;
  for (int i = 0; i < 65; ++i) deep_objects += "{\"k\":";
  deep_objects += "1" + std::string(65, '}');
  expect_parse_error(deep_objects, "nesting deeper than 64");
  // A hostile depth fails cleanly instead of overflowing the stack.
  expect_parse_error(std::string(100000, '['), "nesting deeper than 64");
}

}  // namespace
