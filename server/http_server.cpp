#include "server/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "server/http_session.h"

namespace pagedserve {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class HttpServer::Impl {
 public:
  Impl(ServerOptions options, ServerMetrics& metrics)
      : state_(std::move(options), metrics),
        acceptor_(net::make_strand(io_)),
        signals_(io_, SIGTERM, SIGINT) {}

  std::uint16_t start() {
    const ServerOptions& o = state_.options();
    boost::system::error_code ec;
    auto address = net::ip::make_address(o.host, ec);
    if (ec) throw SetupError("--host " + o.host, "not an IP address: " + ec.message());
    tcp::endpoint endpoint(address, o.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) throw SetupError(o.host + ":" + std::to_string(o.port), "cannot listen: " + ec.message());
    std::uint16_t port = acceptor_.local_endpoint().port();
    signals_.async_wait([this](boost::system::error_code e, int signal) {
      if (!e) {
        spdlog::info("received signal {}: shutting down", signal);
        request_shutdown();
      }
    });
    accept();
    for (int i = 0; i < std::max(1, o.http_threads); ++i) threads_.emplace_back([this] { io_.run(); });
    return port;
  }

  void accept() {
    acceptor_.async_accept(net::make_strand(io_), [this](boost::system::error_code ec, tcp::socket socket) {
      if (!acceptor_.is_open()) return;
      if (!ec) {
        start_http_session(std::move(socket), state_);
      } else {
        spdlog::warn("accept failed: {}", ec.message());
      }
      accept();
    });
  }

  void request_shutdown() {
    std::lock_guard lock(mutex_);
    shutdown_requested_ = true;
    shutdown_cv_.notify_all();
  }

  void wait_for_shutdown_signal() {
    std::unique_lock lock(mutex_);
    shutdown_cv_.wait(lock, [this] { return shutdown_requested_; });
  }

  void shutdown() {
    if (stopped_) return;
    state_.start_draining();
    net::post(acceptor_.get_executor(), [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
    });
    signals_.cancel();
    auto deadline = std::chrono::steady_clock::now() + state_.options().shutdown_timeout;
    if (wait_for_jobs(deadline)) {
      spdlog::info("all in-flight requests finished");
    } else {
      spdlog::warn("{} requests still in flight after {} s; aborting them", state_.jobs_in_flight(),
                   state_.options().shutdown_timeout.count());
      state_.abort_all_jobs();
      wait_for_jobs(std::chrono::steady_clock::now() + std::chrono::seconds(5));
    }
    // Let the last bytes of finished responses reach their sockets.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    io_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    stopped_ = true;
  }

  ServerState& state() { return state_; }

 private:
  bool wait_for_jobs(std::chrono::steady_clock::time_point deadline) {
    while (state_.jobs_in_flight() > 0) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  ServerState state_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  net::signal_set signals_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable shutdown_cv_;
  bool shutdown_requested_ = false;
  bool stopped_ = false;
};

HttpServer::HttpServer(ServerOptions options, ServerMetrics& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), metrics)) {}

HttpServer::~HttpServer() { impl_->shutdown(); }

std::uint16_t HttpServer::start() { return impl_->start(); }
void HttpServer::set_backend(std::shared_ptr<CompletionBackend> backend) {
  impl_->state().set_backend(std::move(backend));
}
ServerState& HttpServer::state() { return impl_->state(); }
void HttpServer::wait_for_shutdown_signal() { impl_->wait_for_shutdown_signal(); }
void HttpServer::request_shutdown() { impl_->request_shutdown(); }
void HttpServer::shutdown() { impl_->shutdown(); }

}  // namespace pagedserve
