// tcp_echo: a small TCP service and client for the live scenario's tunnel step (the "camera's
// local service" the device tunnels to, and an application using the tunnel). No dependencies.
//
//   tcp_echo serve        listens on 127.0.0.1 (any port), prints "READY <port>", and echoes
//                         every connection (a thread each) until it ends or is killed
//   tcp_echo send PORT    connects to 127.0.0.1:PORT, sends standard input, half-closes, and copies
//                         what comes back to standard output until the other side closes
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "tcp_echo: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Copies `from` to `to` until end of file; false on an error.
bool Copy(int from, int to) {
  char buffer[64 * 1024];
  for (;;) {
    const ssize_t n = read(from, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    if (!WriteAll(to, buffer, static_cast<size_t>(n))) return false;
  }
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return address;
}

int Serve() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = Loopback(0);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(fd, 16) != 0) {
    Die("listen");
  }
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  std::printf("READY %d\n", ntohs(address.sin_port));
  std::fflush(stdout);
  for (;;) {
    const int connection = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      Die("accept");
    }
    std::thread([connection] {
      Copy(connection, connection);
      shutdown(connection, SHUT_WR);
      close(connection);
    }).detach();
  }
}

int Send(const char* port_text) {
  const int port = std::atoi(port_text);
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "tcp_echo: bad port %s\n", port_text);
    return 2;
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = Loopback(static_cast<uint16_t>(port));
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    Die("connect");
  }
  // Both ways at once: an echo sends back while we still send.
  std::thread writer([fd] {
    Copy(STDIN_FILENO, fd);
    shutdown(fd, SHUT_WR);
  });
  const bool ok = Copy(fd, STDOUT_FILENO);
  writer.join();
  close(fd);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "serve") return Serve();
  if (argc == 3 && std::string(argv[1]) == "send") return Send(argv[2]);
  std::fprintf(stderr, "usage: tcp_echo serve | tcp_echo send PORT\n");
  return 2;
}
