# Cost of cross-attention at the 16x16 latent level for diffmine-base's UNet (widths 64-128-160): one training step at
# batch 32 and one no-grad call of 100 inputs, with and without it. Run: .venv/bin/python tools/unet_attention_timing.py
import time, torch
from diffusers import UNet2DConditionModel
torch.manual_seed(0)
def unet(attn16):
    ch=(64,128,160)
    down=("CrossAttnDownBlock2D" if attn16 else "DownBlock2D",)+("CrossAttnDownBlock2D",)*2
    up=("CrossAttnUpBlock2D",)*2+("CrossAttnUpBlock2D" if attn16 else "UpBlock2D",)
    return UNet2DConditionModel(sample_size=16,in_channels=8,out_channels=8,block_out_channels=ch,down_block_types=down,
        up_block_types=up,layers_per_block=1,cross_attention_dim=384,attention_head_dim=8,norm_num_groups=32,
        class_embed_type="projection",projection_class_embeddings_input_dim=384)
for a in (False, True):
    u=unet(a); opt=torch.optim.AdamW(u.parameters(),1e-4)
    n=sum(p.numel() for p in u.parameters())
    x=torch.randn(32,8,16,16); t=torch.randint(0,1000,(32,)); e=torch.randn(32,12,384); c=torch.randn(32,384)
    ts=[]
    for i in range(6):
        t0=time.time(); l=(u(x,t,encoder_hidden_states=e,class_labels=c).sample**2).mean(); l.backward(); opt.step(); opt.zero_grad(); ts.append(time.time()-t0)
    with torch.no_grad():
        xi=torch.randn(100,8,16,16); ti=torch.randint(0,1000,(100,)); ei=torch.randn(100,12,384); ci=torch.randn(100,384)
        t0=time.time(); u(xi,ti,encoder_hidden_states=ei,class_labels=ci); inf=time.time()-t0
    print(f"attn16={a} params={n/1e6:.2f}M train step b32 {min(ts[1:]):.3f}s  inference b100 {inf:.3f}s")
