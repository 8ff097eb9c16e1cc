#include "server/http_session.h"

#include <spdlog/spdlog.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <memory>
#include <optional>
#include <string>

#include "server/completion_job.h"
#include "server/http_exchange.h"
#include "server/http_routes.h"

namespace pagedserve {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

class Session : public std::enable_shared_from_this<Session>, public CompletionOutput {
 public:
  Session(tcp::socket socket, ServerState& state) : stream_(std::move(socket)), state_(state) {}

  void run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
  }

  // CompletionOutput, all on the strand.
  void respond(HttpReply reply) override {
    if (closed_) return;
    stop_watching();
    send_reply(std::move(reply));
  }

  void start_stream() override {
    if (closed_) return;
    stream_response_.emplace(http::status::ok, version_);
    stream_response_->set(http::field::server, "pagedserve");
    stream_response_->set(http::field::content_type, "text/event-stream");
    stream_response_->set(http::field::cache_control, "no-cache");
    stream_response_->keep_alive(keep_alive_);
    stream_response_->chunked(true);
    stream_serializer_.emplace(*stream_response_);
    writing_ = true;
    stream_.expires_after(state_.options().write_timeout);
    http::async_write_header(
        stream_, *stream_serializer_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_stream_written(ec); });
  }

  void write_stream(std::string sse_bytes) override {
    if (closed_) return;
    pending_ += sse_bytes;
    if (!writing_) flush_stream();
  }

  void end_stream() override {
    if (closed_) return;
    stream_ended_ = true;
    if (!writing_) flush_stream();
  }

 private:
  // --- reading -----------------------------------------------------------------------------
  // Two deadlines: a keep-alive connection may wait idle_timeout for a request to begin; from
  // its first byte, the whole request (head and body) must arrive within read_timeout. A client
  // that sends its head a byte at a time is cut off by the read timeout, not held open as long
  // as an idle connection may stay.
  void read_request() {
    parser_.emplace();
    limit_request_parser(*parser_, state_.options());
    if (buffer_.size() > 0) return read_head();  // pipelined bytes: the request has begun
    stream_.expires_after(state_.options().idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->buffer_.commit(n);
                              if (ec) return self->on_read_error(ec);
                              self->read_head();
                            });
  }

  void read_head() {
    stream_.expires_after(state_.options().read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t head_bytes) {
                              if (!ec) ec = check_head_size(head_bytes, self->state_.options());
                              self->on_header(ec);
                            });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    if (parser_->is_done()) return handle_request();
    auto read_body = [self = shared_from_this()] {
      http::async_read(self->stream_, self->buffer_, *self->parser_,
                       [self](beast::error_code ec, std::size_t) {
                         if (ec) return self->on_read_error(ec);
                         self->handle_request();
                       });
    };
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      static const std::string continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(continue_line),
                       [self = shared_from_this(), read_body](beast::error_code ec, std::size_t) {
                         if (ec) return self->close();
                         read_body();
                       });
      return;
    }
    read_body();
  }

  void on_read_error(beast::error_code ec) {
    std::optional<HttpReply> reply = read_error_reply(ec, state_.options());
    if (!reply) return close();
    keep_alive_ = false;
    send_reply(std::move(*reply));
  }

  void handle_request() {
    auto& request = parser_->get();
    version_ = request.version();
    keep_alive_ = request.keep_alive() && !state_.draining();
    RouteResult result = route_request(request_view(request), state_);
    if (auto* reply = std::get_if<HttpReply>(&result)) return send_reply(std::move(*reply));
    auto backend = state_.backend();
    auto self = shared_from_this();
    job_ =
        std::make_shared<CompletionJob>(std::move(std::get<CompletionStart>(result)), backend, state_, self,
                                        [executor = stream_.get_executor()](std::function<void()> work) {
                                          net::post(executor, std::move(work));
                                        });
    watch_for_hang_up();
    job_->start();
  }

  // --- hang-up detection while the engine works ----------------------------------------------
  // A real read, not a readiness wait: Asio may report a socket readable when it is not (a wait
  // op can complete speculatively), which once made healthy clients look gone. The read ends
  // with EOF or an error when the peer closes; bytes that arrive meanwhile are the client's next
  // (pipelined) request and are kept for the parser.
  void watch_for_hang_up() {
    watching_ = true;
    const std::uint64_t generation = ++watch_generation_;
    stream_.socket().async_read_some(
        net::buffer(watch_bytes_),
        [self = shared_from_this(), generation](beast::error_code ec, std::size_t n) {
          self->on_watch(ec, n, generation);
        });
  }

  void on_watch(beast::error_code ec, std::size_t n, std::uint64_t generation) {
    if (n > 0) {  // keep early bytes of the next request, whatever became of the watch
      net::buffer_copy(buffer_.prepare(n), net::buffer(watch_bytes_, n));
      buffer_.commit(n);
    }
    if (generation != watch_generation_ || !watching_) return;
    watching_ = false;
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      spdlog::debug("client hung up; aborting its request");
      client_gone();
    }
    // Otherwise the client pipelined its next request: read_request() parses it from buffer_.
  }

  void stop_watching() {
    if (!watching_) return;
    watching_ = false;
    ++watch_generation_;
    beast::error_code ignored;
    stream_.socket().cancel(ignored);
  }

  void client_gone() {
    if (job_) job_->abort();
    close();
  }

  // --- writing -------------------------------------------------------------------------------
  void send_reply(HttpReply reply) {
    auto response = std::make_shared<HttpResponseMessage>(
        make_response(std::move(reply), version_, keep_alive_ && !state_.draining()));
    stream_.expires_after(state_.options().write_timeout);
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
                        if (ec || !response->keep_alive()) return self->close();
                        self->finish_exchange();
                      });
  }

  void flush_stream() {
    if (closed_) return;
    if (!pending_.empty()) {
      chunk_in_flight_ = std::move(pending_);
      pending_.clear();
      writing_ = true;
      stream_.expires_after(state_.options().write_timeout);
      net::async_write(
          stream_, http::make_chunk(net::buffer(chunk_in_flight_)),
          [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_stream_written(ec); });
      return;
    }
    if (stream_ended_ && !last_chunk_sent_) {
      last_chunk_sent_ = true;
      writing_ = true;
      stream_.expires_after(state_.options().write_timeout);
      net::async_write(stream_, http::make_chunk_last(),
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         self->writing_ = false;
                         if (ec) return self->close();
                         self->stop_watching();
                         if (!self->keep_alive_ || self->state_.draining()) return self->close();
                         self->finish_exchange();
                       });
    }
  }

  void on_stream_written(beast::error_code ec) {
    writing_ = false;
    if (ec) return client_gone();  // a stream the client stopped reading or closed
    flush_stream();
  }

  // Ready for the next request on this keep-alive connection.
  void finish_exchange() {
    job_.reset();
    stream_response_.reset();
    stream_serializer_.reset();
    stream_ended_ = last_chunk_sent_ = false;
    read_request();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    watching_ = false;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  static constexpr std::size_t kFirstRead = 4096;  // the read that waits for a request to begin

  beast::tcp_stream stream_;
  ServerState& state_;
  beast::flat_buffer buffer_;
  std::optional<HttpRequestParser> parser_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool closed_ = false;
  std::shared_ptr<CompletionJob> job_;
  bool watching_ = false;
  std::uint64_t watch_generation_ = 0;
  std::array<char, 1024> watch_bytes_{};  // what the hang-up watch read, moved into buffer_
  // Streaming state: one write in flight at a time; later chunks gather in pending_.
  std::optional<http::response<http::empty_body>> stream_response_;
  std::optional<http::response_serializer<http::empty_body>> stream_serializer_;
  std::string pending_;
  std::string chunk_in_flight_;
  bool writing_ = false;
  bool stream_ended_ = false;
  bool last_chunk_sent_ = false;
};

}  // namespace

void start_http_session(boost::asio::ip::tcp::socket socket, ServerState& state) {
  std::make_shared<Session>(std::move(socket), state)->run();
}

}  // namespace pagedserve
