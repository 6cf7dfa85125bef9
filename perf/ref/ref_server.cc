// ref_server: the server a user might pick instead of corepipe, for side-by-side benchmarks.
//
// A C++ async gRPC server built from Debian's libgrpc++ (the same gRPC 1.51 as corepiped),
// serving corepipe.v1.Pipeline/Execute with the same request and response messages, as a
// passthrough: the response's output is the request's input; and ExecuteStream the same way
// (no answer to the open message, one response per frame with its seq, one empty response with
// seq = frames after the client half-closes, then OK), as corepipe does for passthrough. It is the canonical async
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

// A completion-queue tag: every pending operation's tag is one of these.
class Tag {
      public:
	virtual ~Tag() = default;
	virtual void Proceed(bool ok) = 0;
};

class CallData : public Tag {
      public:
	CallData(corepipe::v1::Pipeline::AsyncService *svc, grpc::ServerCompletionQueue *cq)
	    : svc_(svc), cq_(cq), responder_(&ctx_)
	{
		svc_->RequestExecute(&ctx_, &req_, &responder_, cq_, cq_, this);
	}

	// Called when this call's pending operation completes.
	void Proceed(bool ok) override
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

// One ExecuteStream call: read, write, read, ... one operation at a time (the client may
// pipeline; the server answers in order).
class StreamData : public Tag {
      public:
	StreamData(corepipe::v1::Pipeline::AsyncService *svc, grpc::ServerCompletionQueue *cq)
	    : svc_(svc), cq_(cq), stream_(&ctx_)
	{
		svc_->RequestExecuteStream(&ctx_, &stream_, cq_, cq_, this);
	}

	void Proceed(bool ok) override
	{
		switch (state_) {
		case kWaiting:
			if (!ok) {
				delete this;
				return;
			}
			new StreamData(svc_, cq_);
			Read();
			break;
		case kReading:
			if (!ok) { // half-closed: the flush response, then the status
				resp_.Clear();
				resp_.set_seq(seq_);
				state_ = kFlushing;
				stream_.Write(resp_, this);
			} else if (req_.has_open()) {
				Read();
			} else {
				resp_.Clear();
				resp_.set_seq(seq_++);
				*resp_.mutable_output() = req_.frame(); // passthrough
				state_ = kWriting;
				stream_.Write(resp_, this);
			}
			break;
		case kWriting:
			if (ok)
				Read();
			else
				Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
			break;
		case kFlushing:
			Finish(grpc::Status::OK);
			break;
		case kDone:
			delete this;
			break;
		}
	}

      private:
	enum State { kWaiting, kReading, kWriting, kFlushing, kDone };
	void Read()
	{
		state_ = kReading;
		stream_.Read(&req_, this);
	}
	void Finish(const grpc::Status &st)
	{
		state_ = kDone;
		stream_.Finish(st, this);
	}
	corepipe::v1::Pipeline::AsyncService *svc_;
	grpc::ServerCompletionQueue *cq_;
	grpc::ServerContext ctx_;
	corepipe::v1::StreamRequest req_;
	corepipe::v1::StreamResponse resp_;
	grpc::ServerAsyncReaderWriter<corepipe::v1::StreamResponse, corepipe::v1::StreamRequest>
	    stream_;
	uint64_t seq_ = 0;
	State state_ = kWaiting;
};

void
Loop(corepipe::v1::Pipeline::AsyncService *svc, grpc::ServerCompletionQueue *cq, int slots)
{
	void *tag;
	bool ok;

	for (int i = 0; i < slots; i++) {
		new CallData(svc, cq);
		new StreamData(svc, cq);
	}
	while (cq->Next(&tag, &ok))
		static_cast<Tag *>(tag)->Proceed(ok);
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
