/*
 * Handing an accepted connection to gRPC from C.
 *
 * gRPC's external-connection acceptor (the server port "external:<name>", what its C++
 * ExternalConnectionAcceptor uses) stores a grpc_core::TcpServerFdHandler in the pointer that
 * the channel arg <name> points to. The class lives in the core's internal headers, which Debian
 * does not install; this is its declaration (src/core/lib/iomgr/tcp_server.h, unchanged since
 * gRPC 1.20 and in 1.51): one virtual method after the destructor. Handle() takes ownership of
 * the socket and starts the connection's handshake with the port's credentials.
 */
#include <grpc/grpc.h>

namespace grpc_core
{
class TcpServerFdHandler
{
      public:
	virtual ~TcpServerFdHandler() = default;
	virtual void Handle(int listener_fd, int fd, grpc_byte_buffer *pending_read) = 0;
};
} // namespace grpc_core

extern "C" void cp_grpc_handoff(void *handler, int listener_fd, int fd);

extern "C" void
cp_grpc_handoff(void *handler, int listener_fd, int fd)
{
	static_cast<grpc_core::TcpServerFdHandler *>(handler)->Handle(listener_fd, fd, nullptr);
}
