// One worker of the tunnel data plane: a thread that owns a TUN fd, a UDP socket on the NAT-T port and a raw
// ESP socket, and moves packets between them without JavaScript on the per-packet path.
//
//   TUN --read x64--> selector lookup (outbound SAs) --seal--> sendmmsg to the SA's peer
//   UDP --recvmmsg x64--> 0xff: keepalive, dropped | 0x00000000: IKE, handed to JS | SPI: open, check the
//                         inner addresses against the SA's selectors, write to TUN
//
// Threads: JavaScript (the control plane, dataplane.cc) adds and removes SAs in the worker's table and reads
// its counters; the worker owns the packet path. The table and the counters are guarded by the worker's
// mutex, which the worker takes once per batch (not per packet) and never across a blocking system call.
// The SAs themselves are not locked: an attached EspSa belongs to its worker (see esp_sa.h).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dataplane.h"
#include "esp_sa.h"
#include "raw_esp.h"
#include "sa_table.h"

namespace ike {
namespace dataplane {

class Worker {
 public:
  // Runs on the worker thread for each IKE datagram (marker removed); false when JavaScript's queue is full.
  using IkeSink = std::function<bool(const uint8_t* data, size_t len, const sockaddr_storage& from)>;

  // tunFd: non-blocking, the caller's (never closed here). udpFd: bound, this worker's from now on.
  Worker(unsigned index, int tunFd, bool vnet, int udpFd, bool gso, IkeSink onIke);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { Stop(); }

  // Every worker of the data plane, this one at its index; set before Start(). An SA with SPI x belongs to
  // worker x % size (outbound SAs: by the SPI of their inbound pair).
  void SetPeers(std::vector<Worker*> all) { peers_ = std::move(all); }

  // The raw socket for plain ESP, to open before Start().
  rawesp::RawEsp& Raw() { return raw_; }
  int UdpFd() const { return udpFd_; }

  bool Start(std::string* err);
  // Stops the thread; idempotent. The others may still write to its wake-up fd until they are halted too.
  void Halt();
  // Halt(), then closes the sockets and the wake-up fd: once every worker of the data plane is halted.
  void Stop();

  // Guards Sas() and Stats(); taken by the JavaScript thread for every change and read.
  std::mutex& Mu() { return mu_; }
  SaTable& Sas() { return sas_; }
  Counters& Stats() { return c_; }
  unsigned Index() const { return index_; }

 private:
  void Run();
  void FromTun(uint8_t* buf);
  void Count(uint64_t Counters::*field);
  void SealAndSend(uint8_t* buf, const size_t* lens, unsigned count, const uint8_t* hops = nullptr);
  unsigned Send(iovec* iov, sockaddr_storage* to, socklen_t* toLen, unsigned n);
  void FromUdp(uint8_t* buf);
  void FromRaw(uint8_t* buf);
  void WriteOut(std::unique_lock<std::mutex>& lock);
  unsigned WritePlain();
  unsigned WriteJoined(unsigned* joined);
  void Datagram(uint8_t* d, size_t len, const sockaddr_storage& from);
  void Esp(uint8_t* d, size_t len, const sockaddr_storage& from, bool udp, uint8_t hop = 0);
  // An ESP packet Esp() found the SA of, to open at the end of the batch (OpenQueued, from WriteOut).
  struct Opening {
    SaEntry* e;
    uint8_t* d;
    size_t len;
    const sockaddr_storage* from;  // the receive batch's: valid until its WriteOut
    bool udp;
  };
  void OpenQueued();
  void Opened(const Opening& o, const esp::PacketIo& io);
  void ByEntry(SaEntry* const* owners, esp::PacketIo* io, size_t n, bool seal);
  void Transport(SaEntry* e, uint8_t* d, size_t len, uint8_t* inner, size_t innerLen, uint8_t nh,
                 const sockaddr_storage& from, bool udp);

  // ---- handover (dataplane_handover.cc) ----
  // A packet that belongs to another worker's SA: a TUN packet the kernel queued here (its queue is chosen by
  // flow hash, not by SA), or ESP that reached this worker's socket. Copied, never processed here.
  struct Parcel {
    enum Kind : uint8_t { kTun, kUdp, kRaw };
    uint32_t offset, length;  // in the bundle's data
    Kind kind;
    uint8_t hops;             // handovers so far: bounded, so that tables changing meanwhile cannot loop a packet
    sockaddr_storage from;    // inbound: the sender
  };
  // Parcels of one burst for one worker, in one buffer: one lock and one wake-up per burst, not per packet.
  struct Bundle {
    std::vector<uint8_t> data;
    std::vector<Parcel> parcels;
  };
  static constexpr uint8_t kMaxHops = 3;
  static constexpr size_t kMaxInbox = 8192;  // parcels waiting for one worker; more are dropped (counted)
  // Worker, mu_ held: queues a copy of the packet for worker `to`, sent at FlushHandovers.
  void HandOver(unsigned to, Parcel::Kind kind, const uint8_t* p, size_t len, const sockaddr_storage* from, uint8_t hops);
  // Worker, mu_ not held: the queued bundles into the other workers' inboxes, each woken once.
  void FlushHandovers();
  // Worker: what the others handed over, processed as if read here (tunBuf: the loop's TUN buffer).
  void DrainInbox(uint8_t* tunBuf);
  void ReceiveTun(const Bundle& b, uint8_t* buf);
  void ReceiveEsp(Bundle& b);

  std::vector<Worker*> peers_;
  std::vector<Bundle> pending_;  // worker: by destination worker
  std::mutex inboxMu_;           // guards inbox_ and inboxParcels_ (taken by the other workers)
  std::vector<Bundle> inbox_;
  size_t inboxParcels_ = 0;

  const unsigned index_;
  const int tunFd_;
  const bool vnet_;  // the TUN fd has IFF_VNET_HDR (openTun with offload): virtio_net_hdr on every packet
  int udpFd_ = -1, wakeFd_ = -1;
  bool gso_ = false;  // worker: UDP_SEGMENT usable
  IkeSink onIke_;
  rawesp::RawEsp raw_;  // plain ESP (IP protocol 50), when CAP_NET_RAW allows it

  std::mutex mu_;
  SaTable sas_;
  Counters c_;

  std::vector<iovec> out_;  // worker: inner packets of one receive batch, to write to TUN
  std::vector<Opening> opens_;  // worker: ESP packets of one receive batch, to open
  // worker: scratch of OpenQueued / ByEntry, kept to spare an allocation per batch
  std::vector<esp::PacketIo> openIo_, group_;
  std::vector<SaEntry*> openOwners_;
  std::vector<size_t> groupIndex_;
  std::vector<uint8_t> done_;
  std::vector<uint8_t> stage_ = std::vector<uint8_t>(kMaxPacket);  // worker: one TSO super-packet
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace dataplane
}  // namespace ike
