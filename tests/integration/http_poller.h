#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vdswap::testing {

// One GET as an HttpPoller saw it; times in ms since the poller started.
struct HttpSample {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  bool ok = false;   // a complete "200" answer within the timeout
  std::string body;  // the answer's body when ok, else what went wrong
};

// What a run of samples amounts to for a client.
struct HttpPollSummary {
  int requests = 0;
  int failed = 0;
  // The longest time between the ends of two successive successful requests (or from the
  // first request to the first success): how long the client saw no service.
  int64_t longest_gap_ms = 0;
  // The successful bodies in order, with repeats collapsed ("web 1", "web 2").
  std::vector<std::string> bodies;
};

// A client that requests http://HOST:PORT/PATH on its own thread, one request at a time,
// a new connection each ("Connection: close"), starting one every `interval` (or at once
// when the previous one took longer), from construction until Stop. A request fails on a
// connection error or when no complete 200 answer arrives within `timeout`.
// Thread-safe: Stop may be called from any thread, once.
class HttpPoller {
 public:
  HttpPoller(std::string host, int port, std::string path, std::chrono::milliseconds interval,
             std::chrono::milliseconds timeout);
  ~HttpPoller();
  HttpPoller(const HttpPoller&) = delete;
  HttpPoller& operator=(const HttpPoller&) = delete;

  // Ends the polling (after the request in flight) and returns every sample, oldest first.
  std::vector<HttpSample> Stop();

 private:
  void Run();

  const std::string host_, path_;
  const int port_;
  const std::chrono::milliseconds interval_, timeout_;
  std::mutex mu_;
  bool stop_ = false;
  std::vector<HttpSample> samples_;
  std::thread thread_;
};

// One GET of http://HOST:PORT/PATH with "Connection: close": the body of a 200 answer, or
// an error message starting "error: ".
HttpSample HttpGetOnce(const std::string& host, int port, const std::string& path,
                       std::chrono::milliseconds timeout);

HttpPollSummary Summarize(const std::vector<HttpSample>& samples);

}  // namespace vdswap::testing
