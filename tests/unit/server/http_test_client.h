// A minimal blocking HTTP/1.1 client over POSIX sockets for server tests (one request per
// connection, "Connection: close"; chunked bodies are decoded).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <string>

namespace pagedserve::testing {

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

inline int connect_local(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += std::size_t(n);
  }
  return true;
}

inline std::string request_text(const std::string& method, const std::string& path, const std::string& body,
                                const std::string& extra_headers) {
  return method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" + extra_headers +
         (body.empty() && method == "GET"
              ? ""
              : "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n") +
         "\r\n" + body;
}

inline std::string decode_chunked(const std::string& raw) {
  std::string out;
  std::size_t at = 0;
  while (at < raw.size()) {
    std::size_t line_end = raw.find("\r\n", at);
    if (line_end == std::string::npos) break;
    std::size_t size = std::stoul(raw.substr(at, line_end - at), nullptr, 16);
    if (size == 0) break;
    out += raw.substr(line_end + 2, size);
    at = line_end + 2 + size + 2;
  }
  return out;
}

inline HttpResult parse_response(const std::string& raw) {
  HttpResult result;
  std::size_t head_end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || head_end == std::string::npos) return result;
  result.status = std::stoi(raw.substr(9, 3));
  std::size_t at = raw.find("\r\n") + 2;
  while (at < head_end) {
    std::size_t end = raw.find("\r\n", at);
    std::string line = raw.substr(at, end - at);
    std::size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
    std::size_t value_start = line.find_first_not_of(' ', colon + 1);
    result.headers[name] = value_start == std::string::npos ? "" : line.substr(value_start);
    at = end + 2;
  }
  std::string body = raw.substr(head_end + 4);
  result.body = result.headers["transfer-encoding"] == "chunked" ? decode_chunked(body) : body;
  return result;
}

inline HttpResult http_call(std::uint16_t port, const std::string& method, const std::string& path,
                            const std::string& body = {}, const std::string& extra_headers = {}) {
  int fd = connect_local(port);
  if (fd < 0) return {};
  send_all(fd, request_text(method, path, body, extra_headers));
  std::string raw;
  char buffer[4096];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) raw.append(buffer, std::size_t(n));
  ::close(fd);
  return parse_response(raw);
}

}  // namespace pagedserve::testing
