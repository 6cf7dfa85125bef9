// ref_server: the server a user might pick instead of corepipe, for side-by-side benchmarks.
//
// A C++ async gRPC server built from Debian's libgrpc++ (the same gRPC 1.51 as corepiped),
// serving corepipe.v1.Pipeline/Execute with the same request and response messages, as a
// passthrough: the response's output is the request's input. It is the canonical async
// pattern from gRPC's examples (one CallData per call, a completion-queue loop per thread), so
// the comparison is corepipe against what gRPC itself recommends, not against a straw man.
//
// usage: ref_server [--port N (0: pick)] [--threads N (default 1)]
// Prints "ref_server listening on port N" once serving; SIGTERM/SIGINT stop it.
#include "corepipe/v1/corepipe.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> g_stop{false};

class CallData {
      public:
	CallData(corepipe::v1::Pipeline::AsyncService *svc, grpc::ServerCompletionQueue *cq)
	    : svc_(svc), cq_(cq), responder_(&ctx_)
	{
		svc_->RequestExecute(&ctx_, &req_, &responder_, cq_, cq_, this);
	}

	// Called when this call's pending operation completes.
	void Proceed(bool ok)
	{
		if (state_ == kWaiting) {
			if (!ok) { // shutting down: the slot comes back unused
				delete this;
				return;
			}
			new CallData(svc_, cq_); // keep one slot armed
			*resp_.mutable_output() = req_.input(); // passthrough
			state_ = kFinishing;
			responder_.Finish(resp_, grpc::Status::OK, this);
		} else {
			delete this;
		}
	}

      private:
	enum State { kWaiting, kFinishing };
	corepipe::v1::Pipeline::AsyncService *svc_;
	grpc::ServerCompletionQueue *cq_;
	grpc::ServerContext ctx_;
	corepipe::v1::ExecuteRequest req_;
	corepipe::v1::ExecuteResponse resp_;
	grpc::ServerAsyncResponseWriter<corepipe::v1::ExecuteResponse> responder_;
	State state_ = kWaiting;
};

void
Loop(corepipe::v1::Pipeline::AsyncService *svc, grpc::ServerCompletionQueue *cq, int slots)
{
	void *tag;
	bool ok;

	for (int i = 0; i < slots; i++)
		new CallData(svc, cq);
	while (cq->Next(&tag, &ok))
		static_cast<CallData *>(tag)->Proceed(ok);
}

} // namespace

int
main(int argc, char **argv)
{
	int port = 0, threads = 1;
	corepipe::v1::Pipeline::AsyncService svc;
	grpc::ServerBuilder b;
	std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
	std::vector<std::thread> ts;
	sigset_t sigs;
	int sig;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (std::strcmp(argv[i], "--port") == 0)
			port = std::atoi(argv[i + 1]);
		else if (std::strcmp(argv[i], "--threads") == 0)
			threads = std::atoi(argv[i + 1]);
	}
	if (threads < 1 || threads > 64) {
		std::fprintf(stderr, "usage: ref_server [--port N] [--threads 1..64]\n");
		return 2;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
	b.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
			   &port);
	b.RegisterService(&svc);
	b.SetMaxReceiveMessageSize(4 << 20);
	for (int i = 0; i < threads; i++)
		cqs.push_back(b.AddCompletionQueue());
	std::unique_ptr<grpc::Server> server = b.BuildAndStart();
	if (!server || port == 0) {
		std::fprintf(stderr, "ref_server: cannot listen\n");
		return 1;
	}
	for (int i = 0; i < threads; i++)
		ts.emplace_back(Loop, &svc, cqs[i].get(), 256);
	std::printf("ref_server listening on port %d\n", port);
	std::fflush(stdout);
	sigwait(&sigs, &sig);
	server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
	for (auto &cq : cqs)
		cq->Shutdown();
	for (auto &t : ts)
		t.join();
	return 0;
}
