// Chat templates: the context HF gives a template, typed errors with the source position,
// limits that stop hostile templates, where templates are found (GGUF keys, a HF folder), the
// prompt a rendered chat becomes (control tokens parsed, one BOS), and a GGUF carrying a
// template used end to end by `run --chat`, `trace --chat-file` and /v1/chat/completions.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "loader/loader.h"
#include "model_variant.h"
#include "server/server.h"
#include "test_support.h"
#include "tokenizer/chat_template.h"

namespace tp {
namespace {

using ojson = nlohmann::ordered_json;
using nlohmann::json;
namespace fs = std::filesystem;

const ojson kChat = ojson::parse(R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])");

std::string render(const std::string& src, const ojson& messages = kChat, const ChatRenderOptions& o = {}) {
  return ChatTemplate(src, "<s>", "</s>", "test.jinja").render(messages, o);
}

// The Error `f` throws (a failed expectation when it throws none).
template <class F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no tp::Error thrown";
  return Error(ErrorKind::Io, "", "");
}

TEST(ChatTemplate, GivesTheHuggingFaceContext) {
  EXPECT_EQ(render("{{ bos_token }}{% for m in messages %}[{{ m.role }}|{{ m['content'] }}]{% endfor %}"
                   "{% if add_generation_prompt %}A:{% endif %}{{ eos_token }}{{ ' no tools' if tools is none }}"),
            "<s>[system|Be brief.][user|Hi]A:</s> no tools");
  ChatRenderOptions o;
  o.add_generation_prompt = false;
  o.date_string = "01 Jan 2030";
  o.extra = {{"enable_thinking", false}, {"tools", ojson::array({"t"})}};
  EXPECT_EQ(render("{{ 'gen' if add_generation_prompt else 'no gen' }} {{ date_string }} "
                   "{{ 'think' if enable_thinking else 'no think' }} {{ tools | length }}", kChat, o),
            "no gen 01 Jan 2030 no think 1");
  o.now = 86400 * 365;  // 1971-01-01 00:00 UTC
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ(render("{{ strftime_now('%Y-%m-%d %H:%M') }}", kChat, o), "1971-01-01 00:00");
  EXPECT_EQ(render("{% for i in range(7, 1, -3) %}{{ i }},{% endfor %}{{ range(3) | join('.') }}"), "7,4,0.1.2");
}

TEST(ChatTemplate, RaiseExceptionIsAUsageErrorNamingTheTemplateAndLine) {
  const Error e = error_of([] { render("ok\n{% if messages[0].role == 'system' %}{{ raise_exception('No system role') }}{% endif %}"); });
  EXPECT_EQ(e.kind(), ErrorKind::Usage);
  EXPECT_NE(e.where().find("test.jinja, line 2"), std::string::npos) << e.where();
  EXPECT_NE(e.problem().find("No system role"), std::string::npos) << e.problem();
}

TEST(ChatTemplate, SyntaxAndRuntimeErrorsNameTheSourcePosition) {
  Error e = error_of([] { ChatTemplate("line one\n{% for x in %}", "", "", "bad.jinja"); });
  EXPECT_EQ(e.kind(), ErrorKind::Format);
  EXPECT_NE(e.where().find("bad.jinja, line 2"), std::string::npos) << e.what();
  e = error_of([] { ChatTemplate("{{ 'unterminated }}", "", "", "bad.jinja"); });
  EXPECT_EQ(e.kind(), ErrorKind::Format);
  e = error_of([] { render("a\nb\n{{ messages[0].content.no_such_method() }}"); });
  EXPECT_EQ(e.kind(), ErrorKind::Format);
  EXPECT_NE(e.where().find("line 3"), std::string::npos) << e.what();
  EXPECT_EQ(error_of([] { render("{{ 1 }}", ojson::object()); }).kind(), ErrorKind::Usage);
  // Nodes of the wrong kind where the grammar wants a name: the engine checked these with
  // assert() (an abort in debug builds, a wrong-typed node dereferenced in Release).
  for (const char* src : {"{{ x is 1 }}", "{{ x | 1 }}", "{% for 1 in messages %}{% endfor %}",
                          "{% macro 1() %}{% endmacro %}", "{% if x is (a) %}{% endif %}"}) {
    e = error_of([&] { render(src); });
    EXPECT_EQ(e.kind(), ErrorKind::Format) << src << ": " << e.what();
  }
  // Integer results that are no integer (x % 0 is NaN, overflow past int64): an error naming
  // the line, where the engine converted them with undefined behaviour (a fuzzer finding).
  for (const char* src : {"a\n{{ 7 % 0 }}", "a\n{{ 9223372036854775807 * 4 }}", "a\n{{ (0.0 / 0.0) | int }}"}) {
    e = error_of([&] { render(src); });
    EXPECT_EQ(e.kind(), ErrorKind::Format) << src << ": " << e.what();
    EXPECT_NE(e.where().find("line 2"), std::string::npos) << src << ": " << e.what();
  }
  EXPECT_EQ(render("{{ 7 % 3 }} {{ 2.5 | int }} {{ -6 * 7 }}"), "1 2 -42");
}

TEST(ChatTemplate, HostileTemplatesHitALimitNotTheStackOrTheMemory) {
  auto limited = [](const std::string& src) {
    const auto t0 = std::chrono::steady_clock::now();
    const Error e = error_of([&] { render(src); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Bounded, not timed: kMaxSeconds of work plus unwinding, with room for a loaded machine.
    EXPECT_LT(s, 8 * ChatTemplate::kMaxSeconds) << src.substr(0, 80) << " took " << s << " s";
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported) << src.substr(0, 80) << ": " << e.what();
    return e;
  };
  limited("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");                                 // recursion
  limited("{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}");    // time
  limited("{{ 'abc' * 100000000000 }}");                                                            // one string
  limited("{{ 'abc' * 9223372036854775807 }}");                                                     // overflow
  limited("{{ range(100000000000) | length }}");                                                    // one array
  limited("{% set ns = namespace(s='xx') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}");
  limited("{{ " + std::string(2000, '(') + "1" + std::string(2000, ')') + " }}");                   // parser depth
  limited("{{ " + std::string(2000, '-') + "1 }}");
  limited(std::string(ChatTemplate::kMaxSourceBytes + 1, 'x'));
  EXPECT_THROW(render(std::string(2000, '{')), Error);
  // A chain of binary operators nests in the tree the engine evaluates recursively: 300 terms
  // render, a chain as long as the size limit allows is refused (and its tree freed safely).
  auto sum = [](size_t n) {
    std::string s = "{{ 0";
    for (size_t i = 0; i < n; ++i) s += "+1";
    return s + " }}";
  };
  EXPECT_EQ(render(sum(300)), "300");
  limited(sum((ChatTemplate::kMaxSourceBytes - 10) / 2));
  // Near INT64_MAX the range neither overflows nor lists more than asked.
  EXPECT_EQ(render("{{ range(9223372036854775800, 9223372036854775807, 5) | join(',') }}"),
            "9223372036854775800,9223372036854775805");
}

TEST(ChatTemplate, FoundInGgufMetadata) {
  const fs::path p = test::scratch_path("chat", "tmpl.gguf");
  {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_string("tokenizer.chat_template", "main {{ 1 }}");
    w.add_string("tokenizer.chat_template.tool_use", "tools");
    w.add_string("tokenizer.chat_templates", "not a template key");
    w.write(p.string());
  }
  const GgufFile f = GgufFile::open(p.string());
  const ChatTemplates t = find_chat_template(f, p.string());
  ASSERT_TRUE(t.main);
  EXPECT_EQ(t.main->text, "main {{ 1 }}");
  EXPECT_NE(t.main->origin.find("tokenizer.chat_template"), std::string::npos);
  ASSERT_EQ(t.named.size(), 1u);
  EXPECT_EQ(t.named.at("tool_use").text, "tools");
  {
    GgufWriter w;
    w.add_u32("tokenizer.chat_template", 7);
    w.write(p.string());
  }
  const Error e = error_of([&] { find_chat_template(GgufFile::open(p.string()), p.string()); });
  EXPECT_NE(std::string(e.what()).find("tokenizer.chat_template"), std::string::npos) << e.what();
  fs::remove(p);
}

TEST(ChatTemplate, FoundInAHuggingFaceFolder) {
  const fs::path dir = test::scratch_path("chat", "hf");
  fs::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) { std::ofstream(dir / name) << text; };
  EXPECT_TRUE(find_chat_template(dir.string()).empty());
  write("tokenizer_config.json", R"({"bos_token": "<s>", "chat_template": "from config"})");
  EXPECT_EQ(find_chat_template(dir.string()).main->text, "from config");
  write("tokenizer_config.json",
        R"({"chat_template": [{"name": "default", "template": "D"}, {"name": "rag", "template": "R"}]})");
  ChatTemplates t = find_chat_template(dir.string());
  EXPECT_EQ(t.main->text, "D");
  EXPECT_EQ(t.named.at("rag").text, "R");
  write("chat_template.jinja", "from file");  // transformers prefers the separate file
  t = find_chat_template(dir.string());
  EXPECT_EQ(t.main->text, "from file");
  EXPECT_EQ(t.named.at("rag").text, "R");
  write("tokenizer_config.json", R"({"chat_template": [{"name": "x"}]})");
  const Error e = error_of([&] { find_chat_template(dir.string()); });
  EXPECT_EQ(e.kind(), ErrorKind::Format);
  EXPECT_NE(e.where().find("chat_template[0]"), std::string::npos) << e.where();
  fs::remove_all(dir);
}

// The fixture with a template that writes BOS itself and EOS after each turn.
constexpr const char* kTemplate =
    "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}";

fs::path chat_model() {
  static const fs::path p = [] {
    test::GgufEdit edit;
    edit.metadata["tokenizer.chat_template"] = gguf_value::string(kTemplate);
    return test::write_gguf_variant(test::synthetic_path(test::kStoriesShaped), "chat", edit);
  }();
  return p;
}

TEST(ChatTemplate, RenderedChatParsesControlTokensAndKeepsOneBos) {
  const auto m = load_model(chat_model().string());
  ASSERT_TRUE(m->chat_template);
  EXPECT_EQ(*m->chat_template, kTemplate);
  const Tokenizer& tok = m->tok();
  ASSERT_TRUE(tok.adds_bos());
  const ChatPrompt p = build_chat_prompt(m->chat_template, tok, m->path, kChat);
  EXPECT_EQ(p.template_used, "model");
  const std::string eos = tok.token_bytes(tok.eos());
  EXPECT_EQ(p.text, "system: Be brief." + eos + "user: Hi" + eos + "assistant:");  // its BOS text dropped
  const auto ids = tok.encode(p.text, p.encode);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.bos()), 1);
  EXPECT_EQ(ids.front(), tok.bos());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.eos()), 2) << "the template's EOS text is a control token";
  // Without parse_special, that text would have been spelled out in ordinary pieces.
  const auto plain = tok.encode(p.text);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), tok.eos()), 0);

  const ChatPrompt f = build_chat_prompt(std::nullopt, tok, m->path, kChat);
  EXPECT_EQ(f.template_used, "fallback");
  EXPECT_EQ(f.text, "system: Be brief.\nuser: Hi\nassistant:");
  EXPECT_FALSE(f.encode.parse_special);
}

TEST(ChatTemplate, RunChatUsesTheModelTemplate) {
  const std::string model = chat_model().string();
  const auto r = test::cli("run -m " + model + " --chat -p Hi -n 2 --temp 0 --json", "", test::Stderr::ToLog);
  ASSERT_EQ(r.status, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["chat_template"], "model");
  const auto m = load_model(model);
  const ChatPrompt p = build_chat_prompt(m->chat_template, m->tok(), m->path, ojson::parse(R"([{"role":"user","content":"Hi"}])"));
  EXPECT_EQ(j["prompt_ids"].get<std::vector<int32_t>>(), m->tok().encode(p.text, p.encode));

  const fs::path chat_file = test::scratch_path("chat", "messages.json");
  std::ofstream(chat_file) << kChat.dump();
  const fs::path out = test::scratch_path("chat", "trace");
  const auto t = test::cli("trace -m " + model + " --chat-file " + chat_file.string() + " -n 2 --temp 0 -o " + out.string(),
                           "", test::Stderr::ToLog);
  ASSERT_EQ(t.status, 0) << t.out;
  std::ifstream is(out / "manifest.json");
  const json manifest = json::parse(is);
  EXPECT_EQ(manifest["chat_template"], "model");
  EXPECT_NE(manifest.dump().find("assistant:"), std::string::npos) << "the rendered prompt is the trace's prompt text";
  const auto bad = test::cli("run -m " + model + " --chat --tokens 1,2 -n 1");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("--chat"), std::string::npos) << bad.out;
  fs::remove_all(out);
  fs::remove(chat_file);
}

TEST(ChatTemplate, ChatCompletionsRenderTheTemplateOrSayTheFallback) {
  const fs::path traces = test::scratch_path("chat", "server-traces");
  auto post = [&](std::shared_ptr<Model> model, const std::string& body, int want,
                  const std::string& path = "/v1/chat/completions") -> std::string {
    server::ServerOptions o;
    o.port = 0;
    o.traces_dir = traces.string();
    o.max_tokens = 8;
    o.n_threads = 2;
    server::Server srv(o, model);
    const int port = srv.bind();
    std::thread th([&] { srv.run(); });
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    auto r = c.Post(path, body, "application/json");
    srv.stop();
    th.join();
    EXPECT_TRUE(r);
    if (!r) return "{}";
    EXPECT_EQ(r->status, want) << r->body;
    return r->body;
  };
  const std::string body = R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                               "max_tokens": 2, "temperature": 0})";
  std::shared_ptr<Model> with(load_model(chat_model().string()));
  const json a = json::parse(post(with, body, 200));
  EXPECT_EQ(a["x_tokenprobe"]["chat_template"], "model");
  // Streamed, the final chunk says it.
  const std::string sse = post(with, body.substr(0, body.rfind('}')) + R"(, "stream": true})", 200);
  const size_t last = sse.rfind("data: {");
  ASSERT_NE(last, std::string::npos) << sse;
  const json final_chunk = json::parse(sse.substr(last + 6, sse.find('\n', last) - last - 6));
  EXPECT_EQ(final_chunk["x_tokenprobe"]["chat_template"], "model") << final_chunk.dump();
  const ChatPrompt p = build_chat_prompt(with->chat_template, with->tok(), with->path, kChat);
  EXPECT_EQ(a["usage"]["prompt_tokens"], with->tok().encode(p.text, p.encode).size());

  std::shared_ptr<Model> without(load_model(test::synthetic_path(test::kStoriesShaped).string()));
  ASSERT_FALSE(without->chat_template);
  EXPECT_EQ(json::parse(post(without, body, 200))["x_tokenprobe"]["chat_template"], "fallback");

  // The viewer's /api/run takes the same messages and keeps what rendered them in the trace.
  const json run = json::parse(post(with, R"({"messages": [{"role": "user", "content": "Hi"}], "n": 2})", 200, "/api/run"));
  EXPECT_EQ(run["chat_template"], "model") << run.dump();
  std::ifstream is(traces / run["trace"].get<std::string>() / "manifest.json");
  const json manifest = json::parse(is);
  EXPECT_EQ(manifest["chat_template"], "model");
  const ChatPrompt hi = build_chat_prompt(with->chat_template, with->tok(), with->path, ojson::parse(R"([{"role":"user","content":"Hi"}])"));
  EXPECT_NE(manifest.dump().find(json(hi.text).dump()), std::string::npos) << "the rendered prompt is the trace's prompt text";
  EXPECT_EQ(json::parse(post(without, R"({"messages": [{"role": "user", "content": "Hi"}], "n": 1})", 200, "/api/run"))["chat_template"],
            "fallback");
  post(with, R"({"prompt": "Hi", "messages": [{"role": "user", "content": "Hi"}]})", 400, "/api/run");

  // A template that refuses the chat is the client's error, with the template's message.
  test::GgufEdit edit;
  edit.metadata["tokenizer.chat_template"] = gguf_value::string(
      "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}");
  std::shared_ptr<Model> strict(load_model(test::write_gguf_variant(test::synthetic_path(test::kStoriesShaped), "chat-strict", edit).string()));
  const json e = json::parse(post(strict, body, 400));
  EXPECT_NE(e.dump().find("System role not supported"), std::string::npos) << e.dump();
  fs::remove_all(traces);
}

}  // namespace
}  // namespace tp
